"""The Kubernetes provisioner against a stand-in API server (no cluster runs here).

The stand-in serves the StatefulSet scale subresource over HTTPS on loopback with a self-signed
certificate made by the openssl CLI, and checks every request against the Kubernetes API's documented
shapes: method and path, `Authorization: Bearer <token>`, `Content-Type: application/merge-patch+json` on
PATCH, a body that sets only spec.replicas; it answers Scale objects (autoscaling/v1). It also plays the
StatefulSet controller: replicas N means real hio-worker processes named <statefulset>-0..N-1, and the
highest ordinals get SIGTERM when N falls, as the kubelet does. When the replicas fall, the removed
pods must already be draining in the master (the lossless scale-in). Every tuple is stored exactly once."""
import http.server
import json
import os
import signal
import ssl
import subprocess
import sys
import tempfile
import threading
import time

import pytest

sys.path.insert(0, os.path.dirname(__file__))
from cluster import BIN, Cluster, check_exactly_once, get_json, random_files, wait_for  # noqa: E402

NS, STS, TOKEN = "hio", "hio-worker", "test-token-0123456789"
SCALE_PATH = f"/apis/apps/v1/namespaces/{NS}/statefulsets/{STS}/scale"


class FakeKubernetes:
    def __init__(self, directory, cluster_env):
        self.dir = directory
        self.cert, key = os.path.join(directory, "ca.crt"), os.path.join(directory, "tls.key")
        subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out",
                        self.cert, "-days", "1", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"],
                       check=True, capture_output=True)
        self.token_file = os.path.join(directory, "token")
        with open(self.token_file, "w") as f:
            f.write(TOKEN + "\n")
        self.env = cluster_env
        self.replicas = 0
        self.pods = {}  # ordinal -> Popen
        self.requests = []  # (method, path, replicas asked or None)
        self.violations = []
        self.scale_downs = []  # (from, to, draining ids at that moment)
        self.master_url = self.repository_url = None
        self.lock = threading.Lock()
        fake = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def reply(self, code, obj):
                body = json.dumps(obj).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def status(self, code, reason, message):
                fake.violations.append(f"{self.command} {self.path}: {message}") if code != 401 else None
                self.reply(code, {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                                  "message": message, "reason": reason, "code": code})

            def scale(self):
                return {"kind": "Scale", "apiVersion": "autoscaling/v1",
                        "metadata": {"name": STS, "namespace": NS}, "spec": {"replicas": fake.replicas},
                        "status": {"replicas": len(fake.pods), "selector": f"app={STS}"}}

            def common(self):
                if self.headers.get("Authorization") != f"Bearer {TOKEN}":
                    self.status(401, "Unauthorized", "Unauthorized")
                    return False
                if self.path != SCALE_PATH:
                    self.status(404, "NotFound", f"unexpected path {self.path}")
                    return False
                return True

            def do_GET(self):
                if not self.common():
                    return
                with fake.lock:
                    fake.requests.append(("GET", self.path, None))
                    self.reply(200, self.scale())

            def do_PATCH(self):
                if not self.common():
                    return
                if self.headers.get("Content-Type") != "application/merge-patch+json":
                    return self.status(415, "UnsupportedMediaType", f"content type {self.headers.get('Content-Type')}")
                try:
                    body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", "0"))))
                    n = body["spec"]["replicas"]
                    assert set(body) == {"spec"} and set(body["spec"]) == {"replicas"}, body
                    assert isinstance(n, int) and n >= 0, body
                except (ValueError, KeyError, TypeError, AssertionError) as e:
                    return self.status(400, "BadRequest", f"not a replicas merge patch: {e!r}")
                with fake.lock:
                    fake.requests.append(("PATCH", self.path, n))
                    if n < fake.replicas:
                        workers = get_json(fake.master_url + "/v1/status")["workers"]
                        draining = sorted(w["id"] for w in workers if w["draining"])
                        fake.scale_downs.append((fake.replicas, n, draining))
                    fake.replicas = n
                    fake.reconcile()
                    self.reply(200, self.scale())

            do_POST = do_PUT = do_DELETE = lambda self: self.status(405, "MethodNotAllowed", f"method {self.command}")

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(self.cert, key)
        self.server.socket = ctx.wrap_socket(self.server.socket, server_side=True)
        self.url = f"https://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def reconcile(self):
        """The StatefulSet controller and kubelet: pods 0..replicas-1 run; higher ordinals get SIGTERM."""
        for i in range(self.replicas):
            if i not in self.pods or self.pods[i].poll() is not None:
                log = open(os.path.join(self.dir, f"{STS}-{i}.log"), "ab")
                self.pods[i] = subprocess.Popen(
                    [os.path.join(BIN, "hio-worker"), "--master", self.master_url, "--repository",
                     self.repository_url, "--name", f"{STS}-{i}", "--channels", "1", "--processor", "sleep:60"],
                    stdout=log, stderr=subprocess.STDOUT, env=self.env)
        for i in [i for i in self.pods if i >= self.replicas]:
            self.pods.pop(i).send_signal(signal.SIGTERM)  # a drained worker deregisters and exits

    def close(self):
        self.server.shutdown()
        for p in self.pods.values():
            p.send_signal(signal.SIGTERM)
        for p in self.pods.values():
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                p.kill()


def master_args(fake, token_file):
    return ["--autoscale", "--provisioner", "kubernetes", "--k8s-api-server", fake.url, "--k8s-namespace", NS,
            "--k8s-statefulset", STS, "--k8s-token-file", token_file, "--k8s-ca-file", fake.cert,
            "--min-workers", "1", "--max-workers", "3", "--worker-channels", "1", "--worker-processor", "sleep:60",
            "--scaling-interval-ms", "500", "--target-delay-ms", "2000", "--scale-out-cooldown-ms", "1500",
            "--scale-in-cooldown-ms", "3000", "--repository", "{repository}"]


def test_a_statefulset_follows_the_load_highest_ordinal_drained_first():
    with tempfile.TemporaryDirectory() as tmp:
        c = None
        fake = None
        try:
            c = Cluster(workers=0, wait=False, master_args=["--repository", "{repository}"])
            fake = FakeKubernetes(tmp, c.env)
            fake.repository_url = c.repository_url
            # The master's URL is known once it runs: restart it with the provisioner pointing at the stand-in.
            c.master_args = master_args(fake, fake.token_file)
            c.restart_master(kill=False)
            fake.master_url = c.master_url
            c.wait_workers(1)
            assert fake.replicas == 1 and [w["id"] for w in c.status()["workers"]] == [f"{STS}-0"]
            groups = [random_files(os.path.join(tmp, f"s{s}"), 120, 1024, 64 << 10, seed=90 + s) for s in range(2)]
            procs = [subprocess.Popen([os.path.join(BIN, "hio"), "stream", "--master", c.master_url, "--source",
                                       f"source-{s}", "--quiet", *sorted(g)], stdout=subprocess.PIPE,
                                      stderr=subprocess.STDOUT, text=True) for s, g in enumerate(groups)]
            t0 = time.time()
            most = 1
            while any(p.poll() is None for p in procs) or c.status()["queue"]["length"] > 0:
                most = max(most, fake.replicas)
                time.sleep(0.2)
                assert time.time() - t0 < 90, "the load did not finish"
            for p in procs:
                out = p.communicate()[0]
                assert p.returncode == 0, out
            assert most >= 2, "the master never scaled the StatefulSet out"
            wait_for(lambda: fake.replicas == 1 and len(c.status()["workers"]) == 1, 45,
                     "the master to scale the StatefulSet back to 1")
            assert [w["id"] for w in c.status()["workers"]] == [f"{STS}-0"]
            expected = {k: v for g in groups for k, v in g.items()}
            problems = check_exactly_once(c.records(), expected)
            assert not problems, "\n".join(problems[:20])
            assert not fake.violations, fake.violations
            # Each scale-down removed exactly the highest ordinal, which the master was already draining.
            assert fake.scale_downs, fake.requests
            for frm, to, draining in fake.scale_downs:
                assert to == frm - 1 and f"{STS}-{to}" in draining, fake.scale_downs
            assert all(m in ("GET", "PATCH") for m, _, _ in fake.requests)
            print(f"  at most {most} replicas; {len(fake.requests)} API requests; scale-downs {fake.scale_downs}")

            # A token the API server refuses: the scale-out fails and the status says why.
            bad = os.path.join(tmp, "bad-token")
            with open(bad, "w") as f:
                f.write("wrong")
            c.master_args = master_args(fake, bad)
            c.master_args[c.master_args.index("--min-workers") + 1] = "2"
            c.restart_master(kill=False)
            wait_for(lambda: any(d["result"].startswith("failed") for d in c.status()["scaling"]["decisions"]), 10,
                     "the refused request in the status")
            failed = [d["result"] for d in c.status()["scaling"]["decisions"] if d["result"].startswith("failed")]
            assert "HTTP 401" in failed[0] and "Unauthorized" in failed[0], failed
            print(f"  refused request shown as: {failed[0][:120]}")
        except Exception:
            if c is not None:
                print(c.logs())
            raise
        finally:
            if c is not None:
                c.close()
            if fake is not None:
                fake.close()


def test_the_manifests_parse_and_fit_the_provisioner():
    """deploy/kubernetes: valid YAML; the Role allows exactly what the provisioner does; names agree."""
    import yaml  # Debian python3-yaml (scripts/setup.sh)
    folder = os.path.join(os.environ.get("HIO_SOURCE", os.path.join(os.path.dirname(__file__), "..", "..")),
                          "deploy", "kubernetes")
    docs = []
    for name in sorted(os.listdir(folder)):
        if name.endswith(".yaml"):
            with open(os.path.join(folder, name)) as f:
                docs += [d for d in yaml.safe_load_all(f) if d]
    for d in docs:
        assert d.get("apiVersion") and d.get("kind") and d["metadata"].get("name"), d
        assert d["kind"] == "Namespace" or d["metadata"].get("namespace") == NS, d["metadata"]
    by = {(d["kind"], d["metadata"]["name"]): d for d in docs}
    rules = by[("Role", "hio-master-scaler")]["rules"]
    assert rules == [{"apiGroups": ["apps"], "resources": ["statefulsets/scale"], "resourceNames": [STS],
                      "verbs": ["get", "patch"]}], rules
    binding = by[("RoleBinding", "hio-master-scaler")]
    assert binding["subjects"][0]["name"] == "hio-master" and binding["roleRef"]["name"] == "hio-master-scaler"
    master = by[("Deployment", "hio-master")]["spec"]["template"]["spec"]
    assert master["serviceAccountName"] == "hio-master"
    margs = master["containers"][0]["args"]
    assert "--provisioner=kubernetes" in margs and f"--k8s-statefulset={STS}" in margs, margs
    workers = by[("StatefulSet", STS)]["spec"]
    assert workers["podManagementPolicy"] == "Parallel" and workers["serviceName"] == STS
    assert by[("Service", STS)]["spec"]["clusterIP"] == "None"
    pod = workers["template"]["spec"]
    wargs = pod["containers"][0]["args"]
    drain = int(next(a.split("=", 1)[1] for a in wargs if a.startswith("--drain-timeout-s=")))
    assert pod["terminationGracePeriodSeconds"] > drain, (pod["terminationGracePeriodSeconds"], drain)
    assert "--name=$(POD_NAME)" in wargs
    env = {e["name"]: e for e in pod["containers"][0]["env"]}
    assert env["POD_NAME"]["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.name"
    assert env["HIO_SECRET"]["valueFrom"]["secretKeyRef"]["name"] == "hio-secret"
    assert ("Secret", "hio-secret") in by
    repo = by[("StatefulSet", "hio-repository")]["spec"]
    assert repo["volumeClaimTemplates"][0]["spec"]["accessModes"] == ["ReadWriteOnce"]
    print(f"  {len(docs)} objects in {folder}")


if __name__ == "__main__":
    sys.exit(pytest.main([__file__, "-q", "-p", "no:cacheprovider"]))
