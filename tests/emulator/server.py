#!/usr/bin/env python3
"""Local HTTPS emulator of Microsoft Entra ID, Fabric REST, Power BI REST and Graph for pbiport tests.

  python3 tests/emulator/server.py --state-dir DIR [--port 0] [--fixture FILE]
      [--token-lifetime SECONDS] [--rate-scale FLOAT] [--latency-ms N]

Generates a test CA + server certificate (127.0.0.1, localhost) with openssl into DIR, writes
DIR/url and prints "READY https://127.0.0.1:PORT". Hosts are path prefixes: /entra, /fabric,
/powerbi, /graph; the control API lives under /_emulator/. See README.md.
"""

import argparse
import json
import os
import re
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
import traceback
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import entra  # noqa: E402
import fabric  # noqa: E402
import gateways  # noqa: E402
import graph  # noqa: E402
import powerbi  # noqa: E402
import scanner  # noqa: E402
import tmdl  # noqa: E402
from common import (DropConnection, HttpError, Req, entra_error, fabric_error, graph_error,  # noqa: E402
                    json_resp, pbi_error, pbi_throttled)
from state import Emu  # noqa: E402

MAX_BODY = 64 * 1024 * 1024
SECRET_QUERY_KEYS = {"code", "client_secret", "refresh_token", "access_token", "password", "key", "code_verifier"}


def _compile(routes):
    return [(meth, re.compile("^" + rx + "$", re.IGNORECASE), fn) for meth, rx, fn in routes]


ROUTES = {
    "entra": _compile(entra.ROUTES),
    "fabric": _compile(fabric.ROUTES + gateways.FABRIC_ROUTES),
    "powerbi": _compile(scanner.ROUTES + gateways.POWERBI_ROUTES + powerbi.ROUTES),
    "graph": _compile(graph.ROUTES),
}


# ---- certificates -----------------------------------------------------------------------

def _openssl(args, cwd):
    r = subprocess.run(["openssl"] + args, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    if r.returncode != 0:
        raise SystemExit("emulator: openssl %s failed: %s" % (args[0], r.stderr.decode(errors="replace").strip()))


def make_certs(state_dir):
    """CA (reused when present) + a fresh server certificate for 127.0.0.1 and localhost."""
    os.makedirs(state_dir, exist_ok=True)
    old = os.umask(0o077)
    try:
        ca_key, ca_pem = os.path.join(state_dir, "ca.key"), os.path.join(state_dir, "ca.pem")
        if not (os.path.exists(ca_key) and os.path.exists(ca_pem)):
            _openssl(["genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", "ca.key"], state_dir)
            _openssl(["req", "-x509", "-new", "-key", "ca.key", "-sha256", "-days", "3650",
                      "-subj", "/CN=pbiport emulator test CA", "-addext", "basicConstraints=critical,CA:TRUE",
                      "-addext", "keyUsage=critical,keyCertSign,cRLSign", "-addext", "subjectKeyIdentifier=hash",
                      "-out", "ca.pem"], state_dir)
        _openssl(["genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", "server.key"],
                 state_dir)
        _openssl(["req", "-new", "-key", "server.key", "-subj", "/CN=127.0.0.1", "-out", "server.csr"], state_dir)
        with open(os.path.join(state_dir, "server.ext"), "w") as f:
            f.write("basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\n"
                    "extendedKeyUsage=serverAuth\nsubjectAltName=IP:127.0.0.1,DNS:localhost\n"
                    "subjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid,issuer\n")
        _openssl(["x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-set_serial",
                  str(int.from_bytes(os.urandom(8), "big")), "-days", "825", "-sha256", "-extfile", "server.ext",
                  "-out", "server.pem"], state_dir)
    finally:
        os.umask(old)
    for name in ("server.csr", "server.ext"):
        os.remove(os.path.join(state_dir, name))
    for name in ("ca.key", "server.key"):
        os.chmod(os.path.join(state_dir, name), 0o600)
    os.chmod(ca_pem, 0o644)
    return ca_pem, os.path.join(state_dir, "server.pem"), os.path.join(state_dir, "server.key")


# ---- HTTP ---------------------------------------------------------------------------------

def host_error(req, status, code, message, retry_after=None):
    headers = [("Retry-After", str(retry_after))] if retry_after is not None else []
    if req.host == "fabric":
        return fabric_error(req, status, code, message, headers, retriable=status in (429, 500, 503))
    if req.host == "powerbi":
        if status == 429:
            return pbi_throttled(retry_after or 1)
        return pbi_error(status, code, message, headers)
    if req.host == "graph":
        r = graph_error(status, code, message, req)
        r.headers += headers
        return r
    if req.host == "entra":
        transient = status == 429 or status >= 500
        r = entra_error(status, "temporarily_unavailable" if transient else "invalid_request",
                        50196 if status == 429 else 90033, message, req)
        r.headers += headers
        return r
    return json_resp(status, {"error": {"code": code, "message": message}}, headers)


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Headers and body go out in separate writes; without TCP_NODELAY the second one
    # waits for the client's delayed ACK (~40 ms per reply).
    disable_nagle_algorithm = True
    server_version = "pbiport-emulator/1.0"
    sys_version = ""

    def setup(self):
        self.request.settimeout(60)
        self.request = self.server.ssl_ctx.wrap_socket(self.request, server_side=True)
        super().setup()

    def log_message(self, fmt, *args):  # request lines are logged by _log_line
        pass

    def _read_body(self):
        if (self.headers.get("Transfer-Encoding") or "").lower() == "chunked":
            chunks, total = [], 0
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    break
                total += size
                if total > MAX_BODY:
                    raise ValueError("body too large")
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
            return b"".join(chunks)
        n = int(self.headers.get("Content-Length") or 0)
        if n > MAX_BODY:
            raise ValueError("body too large")
        return self.rfile.read(n) if n > 0 else b""

    def _handle(self):
        t0 = time.time()
        emu = self.server.emu
        try:
            body = self._read_body()
        except (ValueError, OSError):
            self.close_connection = True
            return
        raw_path, _, raw_query = self.path.partition("?")
        path = urllib.parse.unquote(raw_path)
        parts = path.split("/", 2)
        host = parts[1] if len(parts) > 1 else ""
        sub = "/" + parts[2] if len(parts) > 2 else "/"
        base = "https://127.0.0.1:%d" % self.server.server_address[1]
        req = Req(self.command, host, sub.rstrip("/") or "/", raw_query, self.headers, body, base)
        if host == "_emulator":
            resp = self.server.control(req)
            self._send(resp, req, t0, log=False)
            return
        rows_key = None
        with emu.lock:
            latency_ms, action = emu.fault_for(path, self.command)
            rm = powerbi.ROWS_RE.match(path) if self.command == "POST" else None
            if rm:
                rows_key = rm.group(2)
                emu.pending_rows[rows_key] = emu.pending_rows.get(rows_key, 0) + 1
                req.pending_at_arrival = emu.pending_rows[rows_key]
        try:
            if latency_ms:
                time.sleep(latency_ms / 1000.0)
            if action and action[0] == "drop":
                self._log(req, t0, "drop")
                with emu.lock:
                    emu.counters["faults_dropped"] += 1
                    self._record(req, path, "drop")
                raise DropConnection()
            if host not in ROUTES:
                resp = json_resp(404, {"error": {"code": "NotFound", "message": "Unknown host prefix '/%s'; use "
                                                                              "/entra, /fabric, /powerbi or /graph"
                                                                   % host}})
            elif action and action[0] == "429":
                resp = host_error(req, 429, "RequestBlocked", "Request is blocked by the upstream service until: "
                                                              "%s (UTC)" % time.strftime("%m/%d/%Y %H:%M:%S",
                                                                                         time.gmtime(time.time() +
                                                                                                     action[1])),
                                  action[1])
                with emu.lock:
                    emu.counters["faults_429"] += 1
            elif action and action[0] == "status":
                code = {500: "InternalServerError", 502: "BadGateway", 503: "ServiceUnavailable"}.get(action[1],
                                                                                                      "Error")
                resp = host_error(req, action[1], code, "Emulated failure (%d)" % action[1],
                                  action[2] if action[2] is not None else (1 if action[1] == 503 else None))
                with emu.lock:
                    emu.counters["faults_status"] += 1
            else:
                resp = self._dispatch(req)
                if action and action[0] == "drop_after":
                    self._log(req, t0, "drop-after-%d" % resp.status)
                    with emu.lock:
                        emu.counters["faults_dropped"] += 1
                        self._record(req, path, "drop-after-%d" % resp.status)
                    raise DropConnection()
        except DropConnection:
            self.close_connection = True
            try:
                self.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            return
        finally:
            if rows_key:
                with emu.lock:
                    emu.pending_rows[rows_key] -= 1
        with emu.lock:
            self._record(req, path, resp.status)
        self._send(resp, req, t0)

    def _record(self, req, path, status):
        q = [(k, "***" if k.lower() in SECRET_QUERY_KEYS else v) for k, v in req.query.items()]
        self.server.emu.log.append({"method": req.method, "path": path, "query": urllib.parse.urlencode(q),
                                    "time": self.server.emu.now(), "status": status})

    def _dispatch(self, req):
        emu = self.server.emu
        with emu.lock:
            emu.tick()
            allowed = []
            for meth, rx, fn in ROUTES[req.host]:
                m = rx.match(req.path)
                if not m:
                    continue
                if meth != req.method:
                    allowed.append(meth)
                    continue
                try:
                    return fn(emu, req, m)
                except HttpError as e:
                    return e.resp
                except (ValueError, UnicodeDecodeError, AttributeError, TypeError, KeyError) as e:
                    if isinstance(e, (AttributeError, TypeError, KeyError)):
                        traceback.print_exc(file=sys.stderr)
                    return host_error(req, 400, "InvalidRequest", "The request body is not valid: %s"
                                      % str(e)[:200])
                except Exception:  # a bug in the emulator: answer 500 and show it
                    traceback.print_exc(file=sys.stderr)
                    return host_error(req, 500, "InternalServerError", "emulator bug; see its stderr")
            if allowed:
                return host_error(req, 405, "MethodNotAllowed", "Method %s is not allowed here" % req.method)
            return host_error(req, 404, "NotFound" if req.host != "powerbi" else "PowerBIEntityNotFound",
                              "No emulated API at %s %s" % (req.method, req.path))

    def _send(self, resp, req, t0, log=True):
        try:
            self.send_response(resp.status)
            names = {k.lower() for k, _ in resp.headers}
            for k, v in resp.headers:
                self.send_header(k, v)
            if req.host in ("powerbi", "fabric") and "requestid" not in names:
                self.send_header("RequestId", req.request_id)
            self.send_header("Content-Length", str(len(resp.body)))
            if self.close_connection:
                self.send_header("Connection", "close")
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(resp.body)
            self.wfile.flush()
        except OSError:
            self.close_connection = True
        if log:
            self._log(req, t0, resp.status)

    def _log(self, req, t0, status):
        # method, prefix + path, status, duration: never query strings, headers or bodies
        sys.stderr.write("%s %s /%s%s %s %.1fms\n" % (time.strftime("%H:%M:%S"), req.method, req.host, req.path,
                                                      status, (time.time() - t0) * 1000))
        sys.stderr.flush()

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = _handle


class Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def handle_error(self, request, client_address):
        exc = sys.exc_info()[1]
        if isinstance(exc, (ssl.SSLError, ConnectionError, socket.timeout, TimeoutError)):
            sys.stderr.write("emulator: connection from %s:%d ended: %s\n" % (client_address[0], client_address[1],
                                                                               exc.__class__.__name__))
            return
        super().handle_error(request, client_address)

    # ---- control API ----------------------------------------------------------------------

    def control(self, req):
        emu = self.emu
        name = req.path.strip("/")
        try:
            body = req.json(required=False) if req.body else {}
        except ValueError as e:
            return json_resp(400, {"error": {"code": "InvalidJson", "message": str(e)}})
        with emu.lock:
            if req.method == "POST" and name == "reset":
                emu.reset()
                return json_resp(200, {"ok": True})
            if req.method == "POST" and name == "load":
                emu.load(body)
                return json_resp(200, {"ok": True, "tenants": len(emu.tenants), "workspaces": len(emu.workspaces),
                                       "models": len(emu.models)})
            if req.method == "POST" and name == "faults":
                return json_resp(200, {"ok": True, "rule": emu.add_faults(body or {})})
            if req.method == "DELETE" and name == "faults":
                emu.faults = []
                return json_resp(200, {"ok": True})
            if req.method == "POST" and name == "advance":
                emu.advance((body or {}).get("seconds"))
                return json_resp(200, {"ok": True, "now": emu.now()})
            if req.method == "POST" and name == "config":
                for k, v in (body or {}).items():
                    if k == "rate_scale":
                        emu.rate_scale = float(v)
                    elif k == "token_lifetime":
                        emu.token_lifetime = int(v)
                    elif k == "latency_ms":
                        emu.base_latency_ms = int(v)
                    elif k in emu.config:
                        emu.config[k] = v
                    else:
                        return json_resp(400, {"error": {"code": "UnknownSetting", "message": k}})
                return json_resp(200, {"ok": True, "config": emu.config})
            if req.method == "POST" and name == "refresh-plan":
                key = body.get("dataset_id", "*")
                plan = {k: body[k] for k in ("outcome", "duration_s", "error_code", "error_description") if k in body}
                if plan.get("outcome", "Completed") not in ("Completed", "Failed", "Cancelled", "Disabled"):
                    return json_resp(400, {"error": {"code": "InvalidOutcome", "message": plan["outcome"]}})
                emu.refresh_plans[key] = plan
                return json_resp(200, {"ok": True})
            if req.method == "POST" and name == "rotate-keys":
                key = emu.rotate_keys(keep_old=(body or {}).get("keep_old", True))
                return json_resp(200, {"ok": True, "kid": key.kid, "published": [k.kid for k in emu.signing_keys()]})
            if req.method == "POST" and name == "id-token-fault":
                try:
                    emu.add_id_token_fault((body or {}).get("kind"), (body or {}).get("count", 1))
                except ValueError as e:
                    return json_resp(400, {"error": {"code": "UnknownFault", "message": str(e)}})
                return json_resp(200, {"ok": True})
            if req.method == "POST" and name == "user":
                try:
                    return json_resp(200, {"ok": True, "user": emu.update_user(body or {})})
                except ValueError as e:
                    return json_resp(404, {"error": {"code": "UnknownUser", "message": str(e)}})
            edit = re.fullmatch(r"models/([^/]+)/edit", name)
            if req.method == "POST" and edit:
                try:
                    return json_resp(200, dict(emu.edit_model(edit.group(1), body), ok=True))
                except KeyError:
                    return json_resp(404, {"error": {"code": "UnknownModel",
                                                     "message": "no semantic model %s" % edit.group(1)}})
                except tmdl.EditError as e:
                    return json_resp(400, {"error": {"code": "InvalidEdit", "message": str(e)}})
            if req.method == "POST" and name == "clear-log":
                emu.log.clear()
                return json_resp(200, {"ok": True})
            if req.method == "GET" and name == "state":
                emu.tick()
                sections = [s for s in (req.q("sections") or "").split(",") if s]
                return json_resp(200, emu.dump(sections, with_parts=req.q("parts", "1") != "0"))
        return json_resp(404, {"error": {"code": "NotFound", "message": "unknown control call %s %s"
                                                                        % (req.method, req.path)}})


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[1])
    ap.add_argument("--state-dir", required=True)
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--fixture", help="tenant fixture JSON (default: tests/fixtures/tenants/demo.json)")
    ap.add_argument("--token-lifetime", type=int, default=3600)
    ap.add_argument("--rate-scale", type=float, default=1.0)
    ap.add_argument("--latency-ms", type=int, default=0)
    args = ap.parse_args(argv)
    if args.rate_scale <= 0:
        ap.error("--rate-scale must be positive")
    # without --fixture the demo tenant is loaded, so a bare start is usable at once
    path = args.fixture or os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fixtures", "tenants",
                                        "demo.json")
    with open(path, encoding="utf-8") as f:
        text = f.read()
    _, cert, key = make_certs(args.state_dir)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(cert, key)
    emu = Emu(json.loads(text), token_lifetime=args.token_lifetime, rate_scale=args.rate_scale,
              latency_ms=args.latency_ms, fixture_text=text)
    srv = Server(("127.0.0.1", args.port), Handler)
    srv.ssl_ctx = ctx
    srv.emu = emu
    url = "https://127.0.0.1:%d" % srv.server_address[1]
    tmp = os.path.join(args.state_dir, "url.tmp")
    with open(tmp, "w") as f:
        f.write(url + "\n")
    os.replace(tmp, os.path.join(args.state_dir, "url"))

    def stop(signum, frame):
        threading.Thread(target=srv.shutdown, daemon=True).start()
    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    sys.stdout.write("READY %s\n" % url)
    sys.stdout.flush()
    srv.serve_forever(poll_interval=0.2)
    srv.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
