"""A tiny SigV4-signing client for Strato's Lambda API (stdlib only).

Used by the harness for set-up calls (create, configure, poll) and for single timed requests such
as a cold start; sustained load goes through the Rust load generator instead.
"""

import datetime
import hashlib
import hmac
import http.client
import json
import time
import urllib.parse


class ApiError(Exception):
    def __init__(self, status, body):
        super().__init__(f"HTTP {status}: {body[:300]!r}")
        self.status = status
        self.body = body


def _hmac(key, msg):
    return hmac.new(key, msg.encode(), hashlib.sha256).digest()


def sign_headers(method, host, path, query, body, access_key, secret_key, region, service="lambda",
                 payload_hash=None):
    """Returns the headers (host, x-amz-date, authorization) for a SigV4-signed request. For S3
    (`service="s3"`) also `x-amz-content-sha256`: the body's hash, or `payload_hash` (e.g.
    "UNSIGNED-PAYLOAD" for a body streamed from a file); `path` is then already URI-encoded."""
    now = datetime.datetime.now(datetime.timezone.utc)
    amz_date = now.strftime("%Y%m%dT%H%M%SZ")
    day = now.strftime("%Y%m%d")
    payload_hash = payload_hash or hashlib.sha256(body).hexdigest()
    canonical_query = "&".join(
        f"{urllib.parse.quote(k, safe='-_.~')}={urllib.parse.quote(v, safe='-_.~')}"
        for k, v in sorted(query)
    )
    # Path segments are URI-encoded once more for the canonical request (all services but S3).
    canonical_path = path if service == "s3" else urllib.parse.quote(path, safe="/-_.~")
    headers = {"host": host, "x-amz-date": amz_date}
    if service == "s3":
        headers["x-amz-content-sha256"] = payload_hash
    signed = ";".join(sorted(headers))
    canonical_headers = "".join(f"{k}:{headers[k]}\n" for k in sorted(headers))
    canonical = "\n".join(
        [method, canonical_path, canonical_query, canonical_headers, signed, payload_hash]
    )
    scope = f"{day}/{region}/{service}/aws4_request"
    to_sign = "\n".join(
        ["AWS4-HMAC-SHA256", amz_date, scope, hashlib.sha256(canonical.encode()).hexdigest()]
    )
    key = _hmac(_hmac(_hmac(_hmac(("AWS4" + secret_key).encode(), day), region), service), "aws4_request")
    signature = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
    headers["authorization"] = (
        f"AWS4-HMAC-SHA256 Credential={access_key}/{scope}, SignedHeaders={signed}, Signature={signature}"
    )
    return headers


class Lambda:
    def __init__(self, port, access_key="test", secret_key="test", region="us-east-1", host="127.0.0.1"):
        self.host = host
        self.port = port
        self.access_key = access_key
        self.secret_key = secret_key
        self.region = region
        self.conn = None

    def _conn(self):
        if self.conn is None:
            self.conn = http.client.HTTPConnection(self.host, self.port, timeout=120)
        return self.conn

    def request(self, method, path, body=None, query=(), timed=False, headers=None, service="lambda"):
        """Sends one signed request. With timed=True returns (status, body, ttfb_s, total_s)."""
        extra = headers or {}
        data = b"" if body is None else (body if isinstance(body, bytes) else json.dumps(body).encode())
        headers = sign_headers(
            method, f"{self.host}:{self.port}", path, list(query), data,
            self.access_key, self.secret_key, self.region, service,
        )
        headers["content-type"] = "application/json"
        headers.update(extra)
        url = urllib.parse.quote(path, safe="/-_.~:")
        if query:
            url += "?" + urllib.parse.urlencode(list(query))
        for attempt in range(2):
            conn = self._conn()
            try:
                t0 = time.perf_counter()
                conn.request(method, url, body=data, headers=headers)
                resp = conn.getresponse()
                t1 = time.perf_counter()
                raw = resp.read()
                t2 = time.perf_counter()
                break
            except (http.client.HTTPException, ConnectionError, OSError):
                self.close()
                if attempt:
                    raise
        if timed:
            return resp.status, raw, t1 - t0, t2 - t0
        if resp.status >= 300:
            raise ApiError(resp.status, raw)
        return json.loads(raw) if raw else None

    def close(self):
        if self.conn is not None:
            self.conn.close()
            self.conn = None

    # --- the operations the harness uses ---

    def create_function(self, name, runtime, handler, zip_bytes, memory=128, timeout=30, env=None):
        import base64

        body = {
            "FunctionName": name,
            "Runtime": runtime,
            "Role": "arn:aws:iam::000000000000:role/lambda-role",
            "Handler": handler,
            "Code": {"ZipFile": base64.b64encode(zip_bytes).decode()},
            "MemorySize": memory,
            "Timeout": timeout,
        }
        if env:
            body["Environment"] = {"Variables": env}
        return self.request("POST", "/2015-03-31/functions", body)

    def configuration(self, name):
        return self.request("GET", f"/2015-03-31/functions/{name}/configuration")

    def update_env(self, name, env):
        return self.request(
            "PUT", f"/2015-03-31/functions/{name}/configuration", {"Environment": {"Variables": env}}
        )

    def wait_ready(self, name, timeout=120):
        deadline = time.time() + timeout
        while True:
            cfg = self.configuration(name)
            state = cfg.get("State")
            update = cfg.get("LastUpdateStatus", "Successful")
            if state == "Active" and update == "Successful":
                return cfg
            if state == "Failed" or update == "Failed":
                raise ApiError(0, json.dumps(cfg).encode())
            if time.time() > deadline:
                raise TimeoutError(f"{name} not ready: {state}/{update}")
            time.sleep(0.02)

    def invoke(self, name, payload=b"{}", timed=False):
        return self.request("POST", f"/2015-03-31/functions/{name}/invocations", payload, timed=timed)

    def delete_function(self, name):
        return self.request("DELETE", f"/2015-03-31/functions/{name}")

    def function_arn(self, name):
        return f"arn:aws:lambda:{self.region}:000000000000:function:{name}"

    def add_permission(self, name, statement_id, principal, action="lambda:InvokeFunction", source_arn=None,
                       url_auth_type=None):
        body = {"StatementId": statement_id, "Action": action, "Principal": principal}
        if source_arn:
            body["SourceArn"] = source_arn
        if url_auth_type:
            body["FunctionUrlAuthType"] = url_auth_type
        return self.request("POST", f"/2015-03-31/functions/{name}/policy", body)

    def quick_http_api(self, name, function):
        """An HTTP API quick-created in front of `function` ($default route and stage), allowed to
        invoke it; returns its endpoint (path-style, on this server's address)."""
        api = self.request("POST", "/v2/apis", {"name": name, "protocolType": "HTTP",
                                                "target": self.function_arn(function)}, service="apigateway")
        self.add_permission(function, f"apigw-{api['apiId']}", "apigateway.amazonaws.com",
                            source_arn=f"arn:aws:execute-api:{self.region}:000000000000:{api['apiId']}/*")
        return api["apiEndpoint"]

    def public_function_url(self, name):
        """A function URL with AuthType NONE and the public-access permissions; returns the URL.
        As on AWS since October 2025, a public URL needs both lambda:InvokeFunctionUrl and
        lambda:InvokeFunction granted to everyone."""
        url = self.request("POST", f"/2021-10-31/functions/{name}/url", {"AuthType": "NONE"})
        self.add_permission(name, "url-public", "*", action="lambda:InvokeFunctionUrl", url_auth_type="NONE")
        self.add_permission(name, "url-public-invoke", "*", action="lambda:InvokeFunction")
        return url["FunctionUrl"]
