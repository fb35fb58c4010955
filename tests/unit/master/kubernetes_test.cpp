#include <hio/master/kubernetes.hpp>

#include <doctest/doctest.h>
#include <nlohmann/json.hpp>

using namespace hio::master;

TEST_CASE("the scale subresource path names the namespace and the StatefulSet") {
  CHECK(kubernetes::scale_path("hio", "hio-worker") == "/apis/apps/v1/namespaces/hio/statefulsets/hio-worker/scale");
}

TEST_CASE("the replicas patch is a merge patch of spec.replicas only") {
  const auto j = nlohmann::json::parse(kubernetes::replicas_patch(3));
  CHECK(j == nlohmann::json{{"spec", {{"replicas", 3}}}});
}

TEST_CASE("a Scale object is read; other objects and bad replicas are errors") {
  const auto s = kubernetes::parse_scale(
      R"({"kind":"Scale","apiVersion":"autoscaling/v1","metadata":{"name":"hio-worker","namespace":"hio"},)"
      R"("spec":{"replicas":4},"status":{"replicas":3,"selector":"app=hio-worker"}})");
  REQUIRE(s.has_value());
  CHECK(s->spec_replicas == 4);
  CHECK(s->status_replicas == 3);
  // replicas 0 may be left out of spec (omitempty); status may be missing.
  const auto zero = kubernetes::parse_scale(R"({"kind":"Scale","apiVersion":"autoscaling/v1","spec":{}})");
  REQUIRE(zero.has_value());
  CHECK(zero->spec_replicas == 0);
  CHECK_FALSE(kubernetes::parse_scale("not json").has_value());
  CHECK_FALSE(kubernetes::parse_scale(R"({"kind":"StatefulSet","apiVersion":"apps/v1","spec":{"replicas":1}})").has_value());
  CHECK_FALSE(kubernetes::parse_scale(R"({"kind":"Scale","apiVersion":"autoscaling/v1"})").has_value());
  CHECK_FALSE(kubernetes::parse_scale(R"({"kind":"Scale","apiVersion":"autoscaling/v1","spec":{"replicas":-1}})").has_value());
  CHECK_FALSE(kubernetes::parse_scale(R"({"kind":"Scale","apiVersion":"autoscaling/v1","spec":{"replicas":"2"}})").has_value());
}

TEST_CASE("the message of an API Status error is shown") {
  CHECK(kubernetes::status_message(R"({"kind":"Status","apiVersion":"v1","status":"Failure","message":"forbidden: no","code":403})") ==
        "forbidden: no");
  CHECK(kubernetes::status_message(R"({"kind":"Scale"})").empty());
  CHECK(kubernetes::status_message("<html>").empty());
}

TEST_CASE("pod ordinals belong to one StatefulSet") {
  CHECK(kubernetes::pod_ordinal("hio-worker-0", "hio-worker") == 0);
  CHECK(kubernetes::pod_ordinal("hio-worker-12", "hio-worker") == 12);
  CHECK_FALSE(kubernetes::pod_ordinal("hio-worker-", "hio-worker"));
  CHECK_FALSE(kubernetes::pod_ordinal("hio-worker-x", "hio-worker"));
  CHECK_FALSE(kubernetes::pod_ordinal("hio-worker-01", "hio-worker"));
  CHECK_FALSE(kubernetes::pod_ordinal("hio-worker-big-1", "hio-worker"));
  CHECK_FALSE(kubernetes::pod_ordinal("other-1", "hio-worker"));
  CHECK(kubernetes::pod_names("w", 2, 4) == std::vector<std::string>{"w-2", "w-3"});
}

TEST_CASE("scale-in drains the highest ordinal, never another StatefulSet's pod") {
  std::vector<scale_in_candidate> ws = {{"hio-worker-0", 2}, {"hio-worker-10", 0}, {"hio-worker-9", 2},
                                        {"laptop", 2}, {"auto-vm-1-1", 2}};
  CHECK(kubernetes::highest_ordinal(ws, "hio-worker") == "hio-worker-10");
  CHECK(kubernetes::highest_ordinal({{"laptop", 1}}, "hio-worker").empty());
}

TEST_CASE("the in-cluster API server address comes from the service variables") {
  CHECK(kubernetes::api_server_from("10.96.0.1", "443") == "https://10.96.0.1:443");
  CHECK(kubernetes::api_server_from("fd00::1", "443") == "https://[fd00::1]:443");
  CHECK(kubernetes::api_server_from("", "443").empty());
}

TEST_CASE("a kubernetes provisioner without an API server or token refuses to start") {
  worker_template t;
  t.kubernetes.api_server = "https://127.0.0.1:1";
  t.kubernetes.token_file = "/nonexistent/token";
  auto p = make_provisioner("kubernetes", t);
  REQUIRE_FALSE(p.has_value());
  CHECK(p.error().message.find("token") != std::string::npos);
}
