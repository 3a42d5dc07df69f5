"""sigv4proxy - an AWS Signature Version 4 verifying reverse proxy for tests.

s3rver (the S3-protocol server tests/api/test_s3.py runs) checks only the
access key id of a SigV4 request and never the signature (its
lib/middleware/authentication.js: "Signature version 4 calculation is
unimplemeneted"). This proxy sits in front of it and does what S3 does,
from AWS's published algorithm (Signature Version 4 signing process:
canonical request, string to sign, derived signing key, signature):

  - Authorization must be AWS4-HMAC-SHA256 with Credential
    AKID/DATE/REGION/SERVICE/aws4_request, SignedHeaders and Signature;
  - the access key must be known, the region and service ours, the
    credential date that of X-Amz-Date, and X-Amz-Date within 15 minutes;
  - host, x-amz-date, x-amz-content-sha256 and every x-amz-* header sent
    must be signed;
  - x-amz-content-sha256 must be the SHA-256 of the body received
    (or UNSIGNED-PAYLOAD, as S3 allows);
  - the signature recomputed from the request as received must match.

Anything else is answered 403 with an S3-style XML error and never
forwarded. Good requests go to the upstream unchanged. Python standard
library only; listens on 127.0.0.1.
"""
import datetime
import hashlib
import hmac
import http.client
import http.server
import socket
import threading
import urllib.parse

ALGO = "AWS4-HMAC-SHA256"
EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()
HOP = {"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailers",
       "transfer-encoding", "upgrade", "expect", "content-length"}


def _enc(s, slash_ok=False):
    return urllib.parse.quote(s, safe="-_.~" + ("/" if slash_ok else ""))


def canonical_uri(raw_path, double_encode=False):
    """S3: each segment decoded then encoded once (other services: encoded twice)."""
    segs = raw_path.split("/")
    out = []
    for seg in segs:
        e = _enc(urllib.parse.unquote(seg))
        out.append(_enc(e) if double_encode else e)
    return "/".join(out) or "/"


def canonical_query(raw_query):
    pairs = []
    for part in raw_query.split("&") if raw_query else []:
        if not part:
            continue
        k, _, v = part.partition("=")
        # '+' is a literal plus in SigV4 (urllib's unquote keeps it).
        pairs.append((_enc(urllib.parse.unquote(k)), _enc(urllib.parse.unquote(v))))
    pairs.sort()
    return "&".join("%s=%s" % kv for kv in pairs)


def _trim(v):
    return " ".join(v.strip().split())


def canonical_request(method, raw_path, raw_query, headers, signed, payload_hash,
                      double_encode=False):
    """headers: list of (name, value) as received; signed: sorted lower-case names."""
    lines = []
    for name in signed:
        vals = [_trim(v) for k, v in headers if k.lower() == name]
        lines.append("%s:%s\n" % (name, ",".join(vals)))
    return "\n".join([method, canonical_uri(raw_path, double_encode), canonical_query(raw_query),
                      "".join(lines), ";".join(signed), payload_hash])


def signing_key(secret, date, region, service):
    k = hmac.new(("AWS4" + secret).encode(), date.encode(), hashlib.sha256).digest()
    for part in (region, service, "aws4_request"):
        k = hmac.new(k, part.encode(), hashlib.sha256).digest()
    return k


def signature(secret, amz_date, region, service, creq):
    scope = "%s/%s/%s/aws4_request" % (amz_date[:8], region, service)
    sts = "\n".join([ALGO, amz_date, scope, hashlib.sha256(creq.encode()).hexdigest()])
    return hmac.new(signing_key(secret, amz_date[:8], region, service), sts.encode(),
                    hashlib.sha256).hexdigest()


def sign(method, url_path_query, headers, body, akid, secret, region, service="s3",
         amz_date=None):
    """Signs a request the way an SDK would; returns the headers to send
    (headers given + x-amz-date, x-amz-content-sha256, authorization)."""
    amz_date = amz_date or datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    path, _, query = url_path_query.partition("?")
    h = dict(headers)
    h["x-amz-date"] = amz_date
    h["x-amz-content-sha256"] = hashlib.sha256(body or b"").hexdigest()
    items = [(k.lower(), v) for k, v in h.items()]
    signed = sorted({k for k, _ in items})
    creq = canonical_request(method, path, query, items, signed, h["x-amz-content-sha256"])
    sig = signature(secret, amz_date, region, service, creq)
    h["Authorization"] = "%s Credential=%s/%s/%s/%s/aws4_request, SignedHeaders=%s, Signature=%s" % (
        ALGO, akid, amz_date[:8], region, service, ";".join(signed), sig)
    return h


class Rejected(Exception):
    def __init__(self, code, msg):
        super().__init__(msg)
        self.code = code


def verify(method, raw_path, raw_query, headers, body, keys, region, service="s3",
           max_skew_s=900, now=None):
    """Raises Rejected(code, message) unless the request is correctly signed.
    headers: list of (name, value)."""
    lower = {}
    for k, v in headers:
        lower.setdefault(k.lower(), []).append(v)
    auth = (lower.get("authorization") or [""])[0]
    if not auth.startswith(ALGO + " "):
        raise Rejected("AccessDenied", "no AWS4-HMAC-SHA256 Authorization")
    fields = {}
    for part in auth[len(ALGO) + 1:].split(","):
        k, _, v = part.strip().partition("=")
        fields[k] = v
    try:
        akid, date, reg, svc, term = fields["Credential"].split("/")
        signed = fields["SignedHeaders"].split(";")
        given = fields["Signature"]
    except (KeyError, ValueError):
        raise Rejected("AuthorizationHeaderMalformed", "malformed Authorization")
    if akid not in keys:
        raise Rejected("InvalidAccessKeyId", "unknown access key")
    if reg != region or svc != service or term != "aws4_request":
        raise Rejected("AuthorizationHeaderMalformed", "wrong scope %s/%s/%s" % (reg, svc, term))
    if signed != sorted(signed) or "host" not in signed:
        raise Rejected("AccessDenied", "SignedHeaders not sorted or without host")
    amz_date = (lower.get("x-amz-date") or [""])[0]
    try:
        when = datetime.datetime.strptime(amz_date, "%Y%m%dT%H%M%SZ").replace(
            tzinfo=datetime.timezone.utc)
    except ValueError:
        raise Rejected("AccessDenied", "missing or malformed X-Amz-Date")
    if date != amz_date[:8] or "x-amz-date" not in signed:
        raise Rejected("AccessDenied", "credential date differs from X-Amz-Date, or it is unsigned")
    now = now or datetime.datetime.now(datetime.timezone.utc)
    if abs((now - when).total_seconds()) > max_skew_s:
        raise Rejected("RequestTimeTooSkewed", "X-Amz-Date too far from now")
    for name in lower:
        if name.startswith("x-amz-") and name not in signed:
            raise Rejected("AccessDenied", "header %s is not signed" % name)
    payload = (lower.get("x-amz-content-sha256") or [None])[0]
    if service == "s3":
        if payload is None or "x-amz-content-sha256" not in signed:
            raise Rejected("InvalidRequest", "missing or unsigned x-amz-content-sha256")
        if payload != "UNSIGNED-PAYLOAD" and payload != hashlib.sha256(body).hexdigest():
            raise Rejected("XAmzContentSHA256Mismatch", "the body does not match its SHA-256")
    else:
        payload = payload or hashlib.sha256(body).hexdigest()
    for name in signed:
        if name not in lower:
            raise Rejected("AccessDenied", "signed header %s is missing" % name)
    creq = canonical_request(method, raw_path, raw_query, headers, signed, payload,
                             double_encode=service != "s3")
    want = signature(keys[akid], amz_date, region, service, creq)
    if not hmac.compare_digest(want, given):
        raise Rejected("SignatureDoesNotMatch", "signature mismatch")
    return akid


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, and answers Expect: 100-continue

    def log_message(self, *a):
        pass

    def setup(self):
        super().setup()
        with self.server.owner.lock:
            self.server.owner.conns.add(self.connection)

    def finish(self):
        with self.server.owner.lock:
            self.server.owner.conns.discard(self.connection)
        super().finish()

    def _handle(self):
        p = self.server.owner
        raw_path, _, raw_query = self.path.partition("?")
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            return self._reply(411, "MissingContentLength", "chunked bodies are not supported")
        n = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(n) if n else b""
        headers = list(self.headers.items())
        try:
            verify(self.command, raw_path, raw_query, headers, body, p.keys, p.region)
        except Rejected as e:
            with p.lock:
                p.rejected.append((self.command, self.path, e.code))
            return self._reply(403, e.code, str(e))
        with p.lock:
            p.accepted.append((self.command, self.path))
        up = http.client.HTTPConnection("127.0.0.1", p.upstream_port, timeout=30)
        try:
            fwd = {k: v for k, v in headers if k.lower() not in HOP}
            up.request(self.command, self.path, body=body if (n or self.command == "PUT") else None,
                       headers=fwd)
            r = up.getresponse()
            data = r.read()
            self.send_response(r.status)
            for k, v in r.getheaders():
                if k.lower() not in HOP:
                    self.send_header(k, v)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(data)
        finally:
            up.close()

    def _reply(self, status, code, msg):
        data = ("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>%s</Code>"
                "<Message>%s</Message></Error>" % (code, msg)).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/xml")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    do_GET = do_PUT = do_DELETE = do_HEAD = do_POST = _handle


class Proxy:
    """The verifying proxy on 127.0.0.1 (a free port) in front of upstream_port."""

    def __init__(self, upstream_port, keys, region, port=0):
        self.upstream_port = upstream_port
        self.keys = dict(keys)
        self.region = region
        self.lock = threading.Lock()
        self.accepted = []
        self.rejected = []
        self.conns = set()  # open client connections (close() cuts them too)
        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", port), _Handler)
        self.httpd.daemon_threads = True
        self.httpd.owner = self
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    @property
    def endpoint(self):
        return "http://127.0.0.1:%d" % self.port

    def counts(self):
        with self.lock:
            return len(self.accepted), list(self.rejected)

    def close(self):
        """Stops listening and cuts every open connection: the store is gone."""
        self.httpd.shutdown()
        self.httpd.server_close()
        with self.lock:
            for c in list(self.conns):
                try:
                    c.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
