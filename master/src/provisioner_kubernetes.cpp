// The Kubernetes provisioner: workers are the pods of a StatefulSet; the master changes its replicas
// through the scale subresource over HTTPS (libcurl; the only file that uses it), authenticated with the
// pod's service-account token and checked against the cluster's CA.
//
// Scale-out: GET the Scale, PATCH spec.replicas up by n; the new pods are <name>-<old replicas>.. and
// register under their pod names. Scale-in: the master has drained the highest-ordinal worker (see
// choose_scale_in); PATCH spec.replicas down to that ordinal. The pod then gets SIGTERM, which makes the
// worker finish what it holds and deregister within the pod's terminationGracePeriodSeconds.
#include <hio/common/log.hpp>

#include <hio/common/json.hpp>
#include <hio/master/kubernetes.hpp>
#include <hio/master/provisioner.hpp>

#include <curl/curl.h>
#include <nlohmann/json.hpp>

#include <charconv>
#include <cstdlib>
#include <fstream>
#include <mutex>
#include <sstream>

namespace hio::master {

namespace kubernetes {

std::string scale_path(std::string_view ns, std::string_view statefulset) {
  return "/apis/apps/v1/namespaces/" + std::string(ns) + "/statefulsets/" + std::string(statefulset) + "/scale";
}

std::string replicas_patch(int replicas) {
  return nlohmann::json{{"spec", {{"replicas", replicas}}}}.dump();
}

result<scale> parse_scale(std::string_view body) {
  const auto j = hio::parse_json_or_discarded(body);
  if (j.is_discarded() || !j.is_object()) return make_error(0, "the API server's answer is not a JSON object");
  if (j.value("kind", "") != "Scale" || j.value("apiVersion", "") != "autoscaling/v1")
    return make_error(0, "expected a Scale (autoscaling/v1), got kind '" + j.value("kind", "") + "' apiVersion '" +
                             j.value("apiVersion", "") + "'");
  const auto spec = j.find("spec");
  if (spec == j.end() || !spec->is_object()) return make_error(0, "the Scale has no spec");
  scale s;
  // A Scale of 0 replicas may omit spec.replicas (omitempty in the API's Go types).
  const auto r = spec->find("replicas");
  if (r != spec->end()) {
    if (!r->is_number_integer() || r->get<int>() < 0) return make_error(0, "the Scale's spec.replicas is not a count");
    s.spec_replicas = r->get<int>();
  }
  if (const auto st = j.find("status"); st != j.end() && st->is_object()) {
    if (const auto sr = st->find("replicas"); sr != st->end() && sr->is_number_integer()) s.status_replicas = sr->get<int>();
  }
  return s;
}

std::string status_message(std::string_view body) {
  const auto j = hio::parse_json_or_discarded(body);
  if (j.is_discarded() || !j.is_object() || j.value("kind", "") != "Status") return {};
  return j.value("message", "");
}

std::optional<int> pod_ordinal(std::string_view pod, std::string_view statefulset) {
  if (pod.size() <= statefulset.size() + 1 || !pod.starts_with(statefulset) || pod[statefulset.size()] != '-')
    return std::nullopt;
  const auto digits = pod.substr(statefulset.size() + 1);
  if (digits.size() > 1 && digits[0] == '0') return std::nullopt;
  int n = 0;
  const auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), n);
  if (ec != std::errc() || end != digits.data() + digits.size() || n < 0) return std::nullopt;
  return n;
}

std::vector<std::string> pod_names(std::string_view statefulset, int from, int to) {
  std::vector<std::string> names;
  for (int i = from; i < to; ++i) names.push_back(std::string(statefulset) + "-" + std::to_string(i));
  return names;
}

std::string highest_ordinal(const std::vector<scale_in_candidate>& workers, std::string_view statefulset) {
  std::string best;
  int best_n = -1;
  for (const auto& w : workers) {
    const auto n = pod_ordinal(w.id, statefulset);
    if (n && *n > best_n) {
      best_n = *n;
      best = w.id;
    }
  }
  return best;
}

std::string api_server_from(std::string_view host, std::string_view port) {
  if (host.empty()) return {};
  const std::string h = host.find(':') != std::string_view::npos ? "[" + std::string(host) + "]" : std::string(host);
  return "https://" + h + (port.empty() ? "" : ":" + std::string(port));
}

}  // namespace kubernetes

namespace {

std::string read_file(const std::string& path) {
  std::ifstream f(path);
  std::stringstream ss;
  ss << f.rdbuf();
  std::string s = ss.str();
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r' || s.back() == ' ')) s.pop_back();
  return s;
}

struct http_answer {
  long status = 0;
  std::string body;
};

std::size_t append_body(char* data, std::size_t size, std::size_t n, void* out) {
  static_cast<std::string*>(out)->append(data, size * n);
  return size * n;
}

class kubernetes_provisioner : public provisioner {
 public:
  kubernetes_provisioner(worker_template t, std::string api, std::string ns)
      : t_(std::move(t)), api_(std::move(api)), ns_(std::move(ns)) {}

  std::string name() const override { return "kubernetes"; }

  result<std::vector<std::string>> start_workers(int n) override {
    auto s = get_scale();
    if (!s) return s.error();
    const int to = s->spec_replicas + n;
    if (auto r = set_replicas(to); !r) return r.error();
    spdlog::info("kubernetes: statefulset {}/{} scaled from {} to {} replicas", ns_, t_.kubernetes.statefulset,
                 s->spec_replicas, to);
    return kubernetes::pod_names(t_.kubernetes.statefulset, s->spec_replicas, to);
  }

  result<void> stop_worker(const std::string& id) override {
    const auto ordinal = kubernetes::pod_ordinal(id, t_.kubernetes.statefulset);
    if (!ordinal) return make_error(0, "worker " + id + " is not a pod of statefulset " + t_.kubernetes.statefulset);
    auto s = get_scale();
    if (!s) return s.error();
    if (*ordinal >= s->spec_replicas) return {};  // already being removed
    if (*ordinal + 1 < s->spec_replicas)
      spdlog::warn("kubernetes: scaling {} down to {} also removes the pods above {} (not registered, or draining)",
                   t_.kubernetes.statefulset, *ordinal, id);
    if (auto r = set_replicas(*ordinal); !r) return r.error();
    spdlog::info("kubernetes: statefulset {}/{} scaled from {} to {} replicas (pod {} drains and stops)", ns_,
                 t_.kubernetes.statefulset, s->spec_replicas, *ordinal, id);
    return {};
  }

  std::string choose_scale_in(const std::vector<scale_in_candidate>& workers) const override {
    return kubernetes::highest_ordinal(workers, t_.kubernetes.statefulset);
  }

 private:
  result<kubernetes::scale> get_scale() {
    auto a = request("GET", "");
    if (!a) return a.error();
    auto s = kubernetes::parse_scale(a->body);
    if (!s) return make_error(0, "kubernetes: GET " + path() + ": " + s.error().message);
    return s;
  }

  result<void> set_replicas(int replicas) {
    auto a = request("PATCH", kubernetes::replicas_patch(replicas));
    if (!a) return a.error();
    auto s = kubernetes::parse_scale(a->body);
    if (!s) return make_error(0, "kubernetes: PATCH " + path() + ": " + s.error().message);
    if (s->spec_replicas != replicas)
      return make_error(0, "kubernetes: PATCH " + path() + " answered replicas " + std::to_string(s->spec_replicas) +
                               ", asked " + std::to_string(replicas));
    return {};
  }

  std::string path() const { return kubernetes::scale_path(ns_, t_.kubernetes.statefulset); }

  // One request to the scale subresource. Error for a transport failure or a status other than 200, with
  // the API server's own message when it sent a Status object.
  result<http_answer> request(const std::string& method, const std::string& body) {
    CURL* c = curl_easy_init();
    if (!c) return make_error(0, "kubernetes: cannot initialise libcurl");
    const std::string url = api_ + path();
    // The token is read for every request: projected service-account tokens are rotated on disk.
    const std::string auth = "Authorization: Bearer " + read_file(t_.kubernetes.token_file);
    curl_slist* headers = curl_slist_append(nullptr, auth.c_str());
    headers = curl_slist_append(headers, "Accept: application/json");
    if (method == "PATCH") headers = curl_slist_append(headers, "Content-Type: application/merge-patch+json");
    http_answer a;
    char errbuf[CURL_ERROR_SIZE] = {};
    curl_easy_setopt(c, CURLOPT_URL, url.c_str());
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method.c_str());
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers);
    if (method == "PATCH") {
      curl_easy_setopt(c, CURLOPT_POSTFIELDS, body.c_str());
      curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, static_cast<long>(body.size()));
    }
    if (!t_.kubernetes.ca_file.empty()) curl_easy_setopt(c, CURLOPT_CAINFO, t_.kubernetes.ca_file.c_str());
    curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 1L);
    curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 2L);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, static_cast<long>(t_.kubernetes.timeout.count()));
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, append_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &a.body);
    const CURLcode rc = curl_easy_perform(c);
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &a.status);
    curl_slist_free_all(headers);
    curl_easy_cleanup(c);
    if (rc != CURLE_OK)
      return make_error(0, "kubernetes: " + method + " " + url + ": " + (errbuf[0] ? errbuf : curl_easy_strerror(rc)));
    if (a.status != 200) {
      std::string why = kubernetes::status_message(a.body);
      if (why.empty()) why = a.body.substr(0, 200);
      return make_error(0, "kubernetes: " + method + " " + url + " -> HTTP " + std::to_string(a.status) + ": " + why);
    }
    return a;
  }

  worker_template t_;
  std::string api_, ns_;
};

}  // namespace

result<std::unique_ptr<provisioner>> make_kubernetes_provisioner(worker_template t) {
  auto& k = t.kubernetes;
  std::string api = k.api_server;
  if (api.empty()) {
    const char* host = std::getenv("KUBERNETES_SERVICE_HOST");
    const char* port = std::getenv("KUBERNETES_SERVICE_PORT");
    api = kubernetes::api_server_from(host ? host : "", port ? port : "");
    if (api.empty())
      return make_error(0, "kubernetes: no API server: pass --k8s-api-server or run in a pod "
                           "(KUBERNETES_SERVICE_HOST is not set)");
  }
  while (!api.empty() && api.back() == '/') api.pop_back();
  std::string ns = k.ns;
  if (ns.empty()) ns = read_file("/var/run/secrets/kubernetes.io/serviceaccount/namespace");
  if (ns.empty()) ns = "default";
  if (k.statefulset.empty()) return make_error(0, "kubernetes: the StatefulSet name is empty");
  if (std::ifstream(k.token_file).fail())
    return make_error(0, "kubernetes: cannot read the service-account token " + k.token_file);
  if (!k.ca_file.empty() && std::ifstream(k.ca_file).fail())
    return make_error(0, "kubernetes: cannot read the CA file " + k.ca_file);
  static std::once_flag curl_once;
  std::call_once(curl_once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
  return std::unique_ptr<provisioner>(new kubernetes_provisioner(std::move(t), std::move(api), std::move(ns)));
}

}  // namespace hio::master
