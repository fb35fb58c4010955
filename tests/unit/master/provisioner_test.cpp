// The `command:` provisioner: the user's scripts, run without splicing any value into a shell line.
#include <hio/master/provisioner.hpp>

#include <doctest/doctest.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

using namespace hio::master;
namespace fs = std::filesystem;

namespace {

struct scripts {
  fs::path dir = fs::temp_directory_path() / ("hio-command-provisioner-" + std::to_string(::getpid()));
  scripts() {
    fs::remove_all(dir);
    fs::create_directories(dir);
    write("out.sh", "#!/bin/sh\necho \"$HIO_MASTER $HIO_CHANNELS $HIO_PROCESSOR\" > \"$(dirname \"$0\")/env\"\n"
                    "i=0; while [ $i -lt \"$1\" ]; do echo \"w-$i\"; i=$((i+1)); done\n");
    write("in.sh", "#!/bin/sh\nprintf '%s' \"$1\" > \"$(dirname \"$0\")/stopped\"\n");
    write("fail.sh", "#!/bin/sh\necho 'no quota left' >&2\nexit 4\n");
    write("slow.sh", "#!/bin/sh\nexec sleep 30\n");
  }
  ~scripts() { fs::remove_all(dir); }
  void write(const std::string& name, const std::string& text) const {
    std::ofstream(dir / name) << text;
    fs::permissions(dir / name, fs::perms::owner_all);
  }
  std::string read(const std::string& name) const {
    std::ifstream in(dir / name);
    std::stringstream s;
    s << in.rdbuf();
    return s.str();
  }
  std::string kind(const std::string& out, const std::string& in) const {
    return "command:" + (dir / out).string() + "|" + (dir / in).string();
  }
};

worker_template tmpl() {
  worker_template t;
  t.master_url = "http://10.0.0.1:8080";
  t.channels = 4;
  t.processor = "exec:python3 'my proc'.py";
  return t;
}

}  // namespace

TEST_CASE("command provisioner: the scale-out script's lines are the ids, the template is its environment") {
  scripts s;
  auto p = make_provisioner(s.kind("out.sh", "in.sh"), tmpl());
  REQUIRE(p.has_value());
  auto ids = (*p)->start_workers(3);
  REQUIRE(ids.has_value());
  CHECK(*ids == std::vector<std::string>{"w-0", "w-1", "w-2"});
  CHECK(s.read("env") == "http://10.0.0.1:8080 4 exec:python3 'my proc'.py\n");
}

TEST_CASE("command provisioner: a worker id reaches the scale-in script as one argument, never as shell") {
  scripts s;
  auto p = make_provisioner(s.kind("out.sh", "in.sh"), tmpl());
  REQUIRE(p.has_value());
  // A registered worker chooses its own id: before, a quote in it ended the quoting of a popen line.
  const std::string id = "auto-x'; touch " + (s.dir / "pwned").string() + "; echo '$(id)`id`";
  REQUIRE((*p)->stop_worker(id).has_value());
  CHECK(s.read("stopped") == id);
  CHECK_FALSE(fs::exists(s.dir / "pwned"));
}

TEST_CASE("command provisioner: a failing or hanging script is an error that says why") {
  scripts s;
  auto t = tmpl();
  t.command_timeout = std::chrono::milliseconds(300);
  auto p = make_provisioner(s.kind("fail.sh", "slow.sh"), t);
  REQUIRE(p.has_value());
  auto started = (*p)->start_workers(1);
  REQUIRE_FALSE(started.has_value());
  CHECK(started.error().message.find("exited 4: no quota left") != std::string::npos);
  const auto begin = std::chrono::steady_clock::now();
  auto stopped = (*p)->stop_worker("auto-1");
  REQUIRE_FALSE(stopped.has_value());
  CHECK(stopped.error().message.find("was stopped") != std::string::npos);
  CHECK(std::chrono::steady_clock::now() - begin < std::chrono::seconds(10));
}
