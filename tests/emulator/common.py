"""Shared request/response helpers and error envelopes of the emulated services."""

import json
import time
import uuid
import urllib.parse


class Resp:
    """One HTTP answer. headers: list of (name, value)."""

    def __init__(self, status, body=b"", headers=None, ctype="application/json; charset=utf-8"):
        self.status = status
        self.body = body if isinstance(body, bytes) else body.encode("utf-8")
        self.headers = list(headers or [])
        if self.body and ctype:
            self.headers.append(("Content-Type", ctype))


class HttpError(Exception):
    """Raised by handlers to answer at once with resp."""

    def __init__(self, resp):
        super().__init__(resp.status)
        self.resp = resp


class DropConnection(Exception):
    """Close the socket without an answer."""


def new_id():
    return str(uuid.uuid4())


def iso(ts):
    """Epoch seconds -> 2025-01-02T16:21:38.123Z."""
    t = time.gmtime(ts)
    return time.strftime("%Y-%m-%dT%H:%M:%S", t) + ".%03dZ" % int((ts % 1) * 1000)


def parse_iso(text):
    """ISO-8601 UTC (Z or +00:00, optional fraction) -> epoch seconds, or None."""
    import calendar
    import re
    m = re.match(r"^(\d{4})-(\d\d)-(\d\d)[T ](\d\d):(\d\d)(?::(\d\d)(\.\d+)?)?(Z|[+-]00:?00)?$", text or "")
    if not m:
        return None
    y, mo, d, h, mi = (int(m.group(i)) for i in range(1, 6))
    s = int(m.group(6) or 0)
    frac = float(m.group(7) or 0)
    try:
        return calendar.timegm((y, mo, d, h, mi, s, 0, 0, 0)) + frac
    except (ValueError, OverflowError):
        return None


def json_resp(status, obj, headers=None):
    return Resp(status, json.dumps(obj, separators=(",", ":")), headers)


def empty(status, headers=None):
    return Resp(status, b"", headers)


def html(status, text, headers=None):
    return Resp(status, text, headers, ctype="text/html; charset=utf-8")


def redirect(location, headers=None):
    return Resp(302, b"", [("Location", location)] + list(headers or []))


def fabric_error(req, status, code, message, headers=None, retriable=False, more=None):
    body = {"requestId": req.request_id, "errorCode": code, "message": message}
    if more:
        body["moreDetails"] = more
    if retriable:
        body["isRetriable"] = True
    return json_resp(status, body, headers)


def pbi_error(status, code, message=None, headers=None):
    err = {"code": code}
    if message:
        err["message"] = message
    err["pbi.error"] = {"code": code, "parameters": {}, "details": [], "exceptionCulprit": 1}
    return json_resp(status, {"error": err}, headers)


def pbi_throttled(retry_after):
    return json_resp(429, {"message": "You have exceeded the amount of requests allowed in the current time "
                                      "frame and further requests will fail. Retry in %d seconds." % retry_after},
                     [("Retry-After", str(retry_after))])


def graph_error(status, code, message, req):
    return json_resp(status, {"error": {"code": code, "message": message, "innerError": {
        "date": iso(time.time())[:19], "request-id": req.request_id, "client-request-id": req.request_id}}})


def entra_error(status, error, aadsts, text, req, headers=None):
    now = time.time()
    ts = time.strftime("%Y-%m-%d %H:%M:%SZ", time.gmtime(now))
    desc = "AADSTS%d: %s\r\nTrace ID: %s\r\nCorrelation ID: %s\r\nTimestamp: %s" % (
        aadsts, text, req.request_id, req.request_id, ts)
    return json_resp(status, {"error": error, "error_description": desc, "error_codes": [aadsts],
                              "timestamp": ts, "trace_id": req.request_id, "correlation_id": req.request_id,
                              "error_uri": "https://login.microsoftonline.com/error?code=%d" % aadsts}, headers)


class Req:
    """A parsed request. path is the real service path (host prefix removed)."""

    def __init__(self, method, host, path, raw_query, headers, body, base):
        self.method = method
        self.host = host
        self.path = path
        self.raw_query = raw_query
        self.query = {}
        for k, v in urllib.parse.parse_qsl(raw_query, keep_blank_values=True):
            self.query[k] = v
        self.headers = headers
        self.body = body
        self.base = base
        self.request_id = new_id()
        # rows requests of the same dataset in flight when this one arrived (itself included); set by the server
        self.pending_at_arrival = 0

    def q(self, name, default=None):
        """Query parameter, matched case-insensitively (OData $top, $Top...)."""
        if name in self.query:
            return self.query[name]
        low = name.lower()
        for k, v in self.query.items():
            if k.lower() == low:
                return v
        return default

    def host_url(self, host=None):
        return "%s/%s" % (self.base, host or self.host)

    def header(self, name):
        return self.headers.get(name)

    def json(self, required=True):
        if not self.body:
            if required:
                raise ValueError("request body is empty")
            return {}
        obj = json.loads(self.body.decode("utf-8"))
        return obj

    def form(self):
        out = {}
        for k, v in urllib.parse.parse_qsl(self.body.decode("utf-8", "replace"), keep_blank_values=True):
            out[k] = v
        return out

    def bearer(self):
        auth = self.headers.get("Authorization") or ""
        if auth[:7].lower() == "bearer ":
            return auth[7:].strip()
        return None
