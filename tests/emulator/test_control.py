#!/usr/bin/env python3
"""Control API, faults, TLS set-up, keep-alive and logging hygiene."""

import http.client
import json
import os
import ssl
import stat
import time
import urllib.error
import urllib.request

from emutest import FIXTURES, PBI, SCAN_SECRET, WEB_SECRET, WS_SALES, EmuTestCase, main

GROUPS = "/powerbi/v1.0/myorg/groups"


class Faults(EmuTestCase):
    def setUp(self):
        super().setUp()
        self.emu.control("DELETE", "faults")
        self.sp = self.emu.sp_token()
        self.alice = self.emu.user_tokens()["access_token"]

    def test_error_rate_is_exact_and_scoped(self):
        self.emu.control("POST", "faults", {"error_rate": {"status": 503, "percent": 50}, "path_prefix": "/powerbi"})
        codes = [self.emu.call("GET", GROUPS, token=self.alice).status for _ in range(10)]
        self.assertEqual(codes.count(503), 5)
        self.assertEqual(codes.count(200), 5)
        r = next(r for r in (self.emu.call("GET", GROUPS, token=self.alice) for _ in range(2)) if r.status == 503)
        self.assertEqual(r.header("Retry-After"), "1")
        self.assertEqual(r.json["error"]["code"], "ServiceUnavailable")
        # Fabric is outside the prefix
        self.assertTrue(all(self.emu.call("GET", "/fabric/v1/workspaces", token=self.alice).status == 200
                            for _ in range(4)))
        self.emu.control("DELETE", "faults")
        self.assertEqual(self.emu.call("GET", GROUPS, token=self.alice).status, 200)

    def test_method_filter(self):
        # a create (POST) fails while the list at the same path answers
        path = "/fabric/v1/workspaces/%s/semanticModels" % WS_SALES
        self.emu.control("POST", "faults", {"error_rate": {"status": 503, "percent": 100}, "method": "post",
                                            "path_prefix": path})
        self.assertEqual(self.emu.call("GET", path, token=self.alice).status, 200)
        r = self.emu.call("POST", path, body={"displayName": "x"}, token=self.alice)
        self.assertFabricError(r, 503, "ServiceUnavailable")

    def test_fabric_500_shape(self):
        self.emu.control("POST", "faults", {"error_rate": {"status": 500, "percent": 100}, "path_prefix": "/fabric"})
        r = self.emu.call("GET", "/fabric/v1/workspaces", token=self.alice)
        self.assertFabricError(r, 500, "InternalServerError")
        self.assertTrue(r.json["isRetriable"])

    def test_burst_429(self):
        self.emu.control("POST", "faults", {"burst_429": {"count": 3, "retry_after": 2}})
        r = self.emu.call("GET", "/fabric/v1/workspaces", token=self.alice)
        self.assertFabricError(r, 429, "RequestBlocked")
        self.assertEqual(r.header("Retry-After"), "2")
        r = self.emu.call("GET", GROUPS, token=self.alice)
        self.assertEqual(r.status, 429)
        self.assertIn("Retry in 2 seconds", r.json["message"])
        self.assertEqual(self.emu.call("GET", GROUPS, token=self.alice).status, 429)
        self.assertEqual(self.emu.call("GET", GROUPS, token=self.alice).status, 200)
        self.assertEqual(self.emu.state("counters")["counters"]["faults_429"], 3)

    def test_drop_connections(self):
        self.emu.control("POST", "faults", {"drop_connections": 1, "path_prefix": "/powerbi/v1.0/myorg/groups"})
        with self.assertRaises((urllib.error.URLError, http.client.RemoteDisconnected, ConnectionError)):
            req = urllib.request.Request(self.emu.url + GROUPS, headers={"Authorization": "Bearer " + self.alice})
            self.emu.opener.open(req, timeout=10)
        self.assertEqual(self.emu.call("GET", GROUPS, token=self.alice).status, 200)
        log = self.emu.state("log")["requests"]
        self.assertEqual([e["status"] for e in log if e["path"] == GROUPS], ["drop", 200])

    def test_drop_after_processing(self):
        from test_fabric import definition
        self.emu.control("POST", "config", {"lro_mode": "sync", "page_size": 100})
        self.emu.control("POST", "faults", {"drop_connections": 1, "drop_after": True,
                                            "path_prefix": "/fabric/v1/workspaces/%s/semanticModels" % WS_SALES})
        with self.assertRaises((urllib.error.URLError, http.client.RemoteDisconnected, ConnectionError)):
            self.emu.opener.open(urllib.request.Request(
                self.emu.url + "/fabric/v1/workspaces/%s/semanticModels" % WS_SALES, method="POST",
                data=json.dumps({"displayName": "Lost answer", "definition": definition()}).encode(),
                headers={"Authorization": "Bearer " + self.alice, "Content-Type": "application/json"}), timeout=10)
        names = [m["displayName"] for m in self.emu.call(
            "GET", "/fabric/v1/workspaces/%s/semanticModels" % WS_SALES, token=self.alice).json["value"]]
        self.assertIn("Lost answer", names)  # the model exists although the client saw no answer
        self.assertEqual(self.emu.state("log")["requests"][-2]["status"], "drop-after-201")

    def test_latency_and_expire_tokens(self):
        self.emu.control("POST", "faults", {"latency_ms": 20, "path_prefix": "/graph"})
        self.emu.control("POST", "faults", {"expire_tokens": True})
        self.assertPbiError(self.emu.call("GET", GROUPS, token=self.alice), 403, "TokenExpired")
        self.assertFabricError(self.emu.call("GET", "/fabric/v1/workspaces", token=self.sp), 401, "TokenExpired")
        fresh = self.emu.sp_token()
        self.assertEqual(self.emu.call("GET", "/powerbi/v1.0/myorg/admin/workspaces/modified", token=fresh).status,
                         200)
        st = self.emu.state("faults")
        self.assertEqual(st["faults"][0]["latency_ms"], 20)


class Control(EmuTestCase):
    def test_state_dump_and_counts(self):
        sp = self.emu.sp_token()
        self.emu.user_tokens()
        st = self.emu.control("GET", "state")
        for key in ("workspaces", "models", "connections", "operations", "scans", "tokens", "requests", "tenants"):
            self.assertIn(key, st)
        self.assertEqual(st["tokens"]["issued"], {"client_credentials": 1, "authorization_code": 1})
        sales = next(m for m in st["models"] if m["name"] == "Sales Model")
        self.assertIn("definition/tables/Orders.tmdl", sales["parts"])
        self.assertEqual(len(st["connections"]), 1)
        dump = json.dumps(st)
        for secret in (SCAN_SECRET, WEB_SECRET, sp):
            self.assertNotIn(secret, dump)
        self.assertEqual(st["requests"][-1]["method"], "POST")

    def test_reset_and_load(self):
        with open(os.path.join(FIXTURES, "test.json")) as f:
            fx = json.load(f)
        fx["tenants"][0]["workspaces"] = fx["tenants"][0]["workspaces"][:1]
        j = self.emu.control("POST", "load", fx)
        self.assertEqual(j["workspaces"], 1)
        self.assertEqual(len(self.emu.state("workspaces")["workspaces"]), 1)
        self.emu.control("POST", "reset")
        self.assertEqual(len(self.emu.state("workspaces")["workspaces"]), 6)
        r = self.emu.call("POST", "/_emulator/config", body={"no_such_setting": 1})
        self.assertEqual(r.status, 400)
        r = self.emu.call("GET", "/_emulator/nothing")
        self.assertEqual(r.status, 404)

    def test_unknown_paths(self):
        self.assertEqual(self.emu.call("GET", "/nowhere/x").status, 404)
        r = self.emu.call("GET", "/fabric/v1/nothing-here", token=self.emu.sp_token())
        self.assertFabricError(r, 404, "NotFound")
        r = self.emu.call("DELETE", "/fabric/v1/workspaces", token=self.emu.sp_token())
        self.assertEqual(r.status, 405)

    def test_tls_files_and_url(self):
        d = self.emu.dir
        with open(os.path.join(d, "url")) as f:
            self.assertEqual(f.read().strip(), self.emu.url)
        for key in ("ca.key", "server.key"):
            self.assertEqual(stat.S_IMODE(os.stat(os.path.join(d, key)).st_mode), 0o600)
        # a client that does not trust the test CA fails verification
        ctx = ssl.create_default_context()
        with self.assertRaises(urllib.error.URLError) as cm:
            urllib.request.urlopen(self.emu.url + "/_emulator/state?sections=none", context=ctx, timeout=10)
        self.assertIsInstance(cm.exception.reason, ssl.SSLCertVerificationError)
        # localhost is in the certificate too
        host_url = self.emu.url.replace("127.0.0.1", "localhost")
        with urllib.request.urlopen(host_url + "/_emulator/state?sections=none", context=self.emu.ctx) as r:
            self.assertEqual(r.status, 200)

    def test_keep_alive(self):
        port = int(self.emu.url.rsplit(":", 1)[1])
        conn = http.client.HTTPSConnection("127.0.0.1", port, context=self.emu.ctx, timeout=10)
        for _ in range(3):
            conn.request("GET", "/_emulator/state?sections=none")
            r = conn.getresponse()
            r.read()
            self.assertEqual(r.status, 200)
            self.assertNotEqual((r.getheader("Connection") or "").lower(), "close")
        sock = conn.sock
        conn.request("GET", GROUPS)
        r = conn.getresponse()
        r.read()
        self.assertIs(conn.sock, sock)  # same connection reused
        conn.close()

    def test_stderr_log_has_no_secrets(self):
        tokens = self.emu.user_tokens()
        self.emu.call("GET", GROUPS + "?$top=1", token=tokens["access_token"])
        self.emu.call("POST", "/entra/contoso.test/oauth2/v2.0/token",
                      form={"grant_type": "refresh_token", "client_id": "aaaaaaaa-0000-0000-0000-000000000001",
                            "client_secret": WEB_SECRET, "refresh_token": tokens["refresh_token"],
                            "scope": PBI + "Dataset.ReadWrite.All"})
        # the server logs a request after answering it: wait for the last line to land
        for _ in range(100):
            log = self.emu.stderr_text()
            if "POST /entra/contoso.test/oauth2/v2.0/token 200" in log:
                break
            time.sleep(0.05)
        self.assertIn("GET /powerbi/v1.0/myorg/groups 200", log)
        self.assertIn("POST /entra/contoso.test/oauth2/v2.0/token 200", log)
        for secret in (tokens["access_token"], tokens["refresh_token"], WEB_SECRET, "code_verifier", "$top"):
            self.assertNotIn(secret, log)
        for line in log.strip().splitlines():
            self.assertNotIn("Bearer", line)


class Concurrency(EmuTestCase):
    def test_parallel_clients_one_lock(self):
        import threading
        alice = self.emu.user_tokens()["access_token"]
        body = {"connectivityType": "ShareableCloud", "displayName": "same-name",
                "connectionDetails": {"type": "Snowflake", "creationMethod": "Snowflake.Databases", "parameters": [
                    {"dataType": "Text", "name": "server", "value": "x.snowflakecomputing.com"},
                    {"dataType": "Text", "name": "warehouse", "value": "W"}]},
                "credentialDetails": {"credentials": {"credentialType": "Basic", "username": "u", "password": "p"}}}
        statuses = []
        lock = threading.Lock()

        def worker(i):
            got = [self.emu.call("POST", "/fabric/v1/connections", token=alice, body=body).status,
                   self.emu.call("GET", GROUPS, token=alice).status,
                   self.emu.call("GET", "/fabric/v1/workspaces", token=alice).status]
            with lock:
                statuses.extend(got)
        threads = [threading.Thread(target=worker, args=(i,)) for i in range(16)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        self.assertEqual(statuses.count(201), 1)  # exactly one create wins the name
        self.assertEqual(statuses.count(409), 15)
        self.assertEqual(statuses.count(200), 32)
        self.assertEqual(len(self.emu.state("connections")["connections"]), 2)


class StartupOptions(EmuTestCase):
    latency_ms = 5

    def test_latency_option_and_workspace_lookup(self):
        sp = self.emu.sp_token()
        r = self.emu.call("GET", "/powerbi/v1.0/myorg/admin/workspaces/modified", token=sp)
        self.assertEqual(r.status, 200)
        self.assertIn({"id": WS_SALES}, r.json)


if __name__ == "__main__":
    main()
