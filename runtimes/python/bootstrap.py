"""Strato Python runtime bootstrap.

Speaks the AWS Lambda Runtime API (2018-06-01) at http://$AWS_LAMBDA_RUNTIME_API
and behaves, as seen by a function author, like the AWS managed python3.x
runtimes: handler resolution, LambdaContext, log format, error shapes.

Standard library only; Python 3.9+ syntax. Started as
    python3 -u /var/runtime/bootstrap.py
with cwd = LAMBDA_TASK_ROOT.

Stem-cell mode (STRATO_STEM_CELL=1): everything generic is imported and set up
first, then GET /2018-06-01/runtime/strato/assignment blocks until the platform
assigns a function; its {"env": {...}} is merged into os.environ and only then
is function-specific configuration read (load_config()).
"""

import base64
import decimal
import http.client
import importlib
import json
import logging
import os
import site
import socket
import sys
import sysconfig
import time
import traceback

API_PREFIX = "/2018-06-01/runtime"
ERROR_LOG_LINE_TERMINATE = "\r"
ERROR_LOG_IDENT = "\u00a0"  # NO-BREAK SPACE, as the AWS runtime uses in error logs
ERROR_TYPE_HEADER = "Lambda-Runtime-Function-Error-Type"
EXIT_INIT_ERROR = 1
EXIT_RUNTIME_API_ERROR = 2

_CURRENT_REQUEST_ID = None
_CURRENT_TENANT_ID = None


# --------------------------------------------------------------------------
# Errors
# --------------------------------------------------------------------------


class FaultException(Exception):
    """A runtime-detected fault with an AWS `Runtime.*` error type."""

    MARSHAL_ERROR = "Runtime.MarshalError"
    UNMARSHAL_ERROR = "Runtime.UnmarshalError"
    USER_CODE_SYNTAX_ERROR = "Runtime.UserCodeSyntaxError"
    HANDLER_NOT_FOUND = "Runtime.HandlerNotFound"
    IMPORT_MODULE_ERROR = "Runtime.ImportModuleError"
    BUILT_IN_MODULE_CONFLICT = "Runtime.BuiltInModuleConflict"
    MALFORMED_HANDLER_NAME = "Runtime.MalformedHandlerName"
    LAMBDA_CONTEXT_UNMARSHAL_ERROR = "Runtime.LambdaContextUnmarshalError"

    def __init__(self, exception_type, msg, trace=None):
        super().__init__(msg)
        self.exception_type = exception_type
        self.msg = msg
        self.trace = trace


class RuntimeApiError(Exception):
    """The Runtime API failed (5xx, unexpected status, connection error)."""


def make_error(error_message, error_type, stack_trace, invoke_id=None):
    return {
        "errorMessage": error_message if error_message else "",
        "errorType": error_type if error_type else "",
        "requestId": invoke_id if invoke_id is not None else "",
        "stackTrace": stack_trace if stack_trace else [],
    }


def _user_frames(tb):
    """Traceback frames with the leading runtime (bootstrap.py) frames dropped."""
    frames = traceback.extract_tb(tb)
    for i, frame in enumerate(frames):
        if "/bootstrap.py" not in frame.filename:
            return frames[i:]
    return frames


def error_from_exc_info(exc_info, invoke_id=None, msg=None):
    etype, value, tb = exc_info
    return make_error(
        msg if msg else str(value),
        etype.__name__,
        traceback.format_list(_user_frames(tb)),
        invoke_id,
    )


def _replace_line_indentation(line, indent_char, new_indent_char):
    n = len(line) - len(line.lstrip(indent_char))
    return new_indent_char * n + line[n:]


def log_error(error_result):
    """Log an error result the way the AWS Python runtime does (text format).

    One record: lines joined by '\\r', trace indentation turned into NBSPs.
    """
    if _LOG_FORMAT == "JSON":
        record = {
            "timestamp": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "level": "ERROR",
        }
        record.update(error_result)
        _write_stdout(to_json(record) + "\n")
        return
    description = "[ERROR]"
    etype = error_result.get("errorType")
    if etype:
        description += " " + etype
    emsg = error_result.get("errorMessage")
    if emsg:
        if etype:
            description += ":"
        description += " " + emsg
    lines = [description]
    stack = error_result.get("stackTrace")
    if stack is not None:
        lines.append("Traceback (most recent call last):")
        for element in stack:
            if element == "":
                lines.append("")
            else:
                for trace_line in element.splitlines():
                    lines.append(
                        _replace_line_indentation(trace_line, " ", ERROR_LOG_IDENT)
                    )
    _write_stdout(ERROR_LOG_LINE_TERMINATE.join(lines) + "\n")


# --------------------------------------------------------------------------
# JSON marshalling
# --------------------------------------------------------------------------


class _Encoder(json.JSONEncoder):
    def default(self, o):
        if isinstance(o, decimal.Decimal):
            if o.is_nan():
                return float("nan")
            if o == o.to_integral_value():
                return int(o)
            return float(o)
        return super().default(o)


_ENCODER = _Encoder(ensure_ascii=sys.version_info < (3, 12))


def to_json(obj):
    return _ENCODER.encode(obj)


def unmarshal_request(body, content_type):
    if content_type and not content_type.startswith("application/json"):
        return body
    try:
        return json.loads(body)
    except Exception as e:
        raise FaultException(
            FaultException.UNMARSHAL_ERROR,
            "Unable to unmarshal input: {}".format(str(e)),
            None,
        )


def marshal_response(response):
    if isinstance(response, bytes):
        return response, "application/unknown"
    try:
        return _ENCODER.encode(response).encode("utf-8"), "application/json"
    except Exception as e:
        raise FaultException(
            FaultException.MARSHAL_ERROR,
            "Unable to marshal response: {}".format(str(e)),
            None,
        )


# --------------------------------------------------------------------------
# Runtime API client: one persistent keep-alive connection, TCP_NODELAY.
# --------------------------------------------------------------------------


class _NoDelayConnection(http.client.HTTPConnection):
    def connect(self):
        super().connect()
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


def _read_response(sock):
    """Reads one HTTP/1.1 response: (status, headers with lower-case names,
    body). The exchange is strictly request/response, so nothing past this
    response's body is on the wire when it ends."""
    buf = b""
    while True:
        end = buf.find(b"\r\n\r\n")
        if end >= 0:
            break
        chunk = sock.recv(65536)
        if not chunk:
            raise http.client.RemoteDisconnected("connection closed before the response")
        buf += chunk
    lines = buf[:end].decode("latin-1").split("\r\n")
    parts = lines[0].split(" ", 2)
    if len(parts) < 2 or not parts[0].startswith("HTTP/"):
        raise http.client.BadStatusLine(lines[0])
    try:
        status = int(parts[1])
    except ValueError:
        raise http.client.BadStatusLine(lines[0])
    headers = {}
    for line in lines[1:]:
        name, sep, value = line.partition(":")
        if sep:
            headers[name.strip().lower()] = value.strip()
    rest = buf[end + 4:]
    length = headers.get("content-length")
    if length is not None:
        try:
            want = int(length)
        except ValueError:
            raise http.client.HTTPException("bad Content-Length: %r" % length)
        while len(rest) < want:
            chunk = sock.recv(max(65536, want - len(rest)))
            if not chunk:
                raise http.client.IncompleteRead(rest, want - len(rest))
            rest += chunk
        return status, headers, rest[:want]
    if "chunked" in headers.get("transfer-encoding", "").lower():
        return status, headers, _read_chunked(sock, rest)
    # No length: the body runs to the end of the connection.
    headers["connection"] = "close"
    while True:
        chunk = sock.recv(65536)
        if not chunk:
            return status, headers, rest
        rest += chunk


def _read_chunked(sock, buf):
    body = []
    while True:
        while b"\r\n" not in buf:
            chunk = sock.recv(65536)
            if not chunk:
                raise http.client.IncompleteRead(b"".join(body))
            buf += chunk
        line, buf = buf.split(b"\r\n", 1)
        try:
            size = int(line.split(b";", 1)[0].strip(), 16)
        except ValueError:
            raise http.client.HTTPException("bad chunk size: %r" % line)
        if size == 0:
            # Trailers, then the blank line.
            while not (buf.startswith(b"\r\n") or b"\r\n\r\n" in buf):
                chunk = sock.recv(65536)
                if not chunk:
                    break
                buf += chunk
            return b"".join(body)
        while len(buf) < size + 2:
            chunk = sock.recv(65536)
            if not chunk:
                raise http.client.IncompleteRead(b"".join(body))
            buf += chunk
        body.append(buf[:size])
        buf = buf[size + 2:]


class InvocationRequest(object):
    __slots__ = (
        "invoke_id",
        "trace_id",
        "invoked_function_arn",
        "deadline_ms",
        "client_context",
        "cognito_identity",
        "tenant_id",
        "content_type",
        "body",
    )


def _invocation(h, data):
    """The invocation an answer of /invocation/next carries."""
    inv = InvocationRequest()
    inv.invoke_id = h.get("lambda-runtime-aws-request-id")
    inv.trace_id = h.get("lambda-runtime-trace-id")
    inv.invoked_function_arn = h.get("lambda-runtime-invoked-function-arn")
    deadline = h.get("lambda-runtime-deadline-ms")
    try:
        inv.deadline_ms = int(deadline) if deadline else 0
    except ValueError:
        inv.deadline_ms = 0
    inv.client_context = h.get("lambda-runtime-client-context")
    inv.cognito_identity = h.get("lambda-runtime-cognito-identity")
    inv.tenant_id = h.get("lambda-runtime-aws-tenant-id")
    inv.content_type = h.get("content-type")
    inv.body = data
    if not inv.invoke_id:
        raise RuntimeApiError("next invocation without Lambda-Runtime-Aws-Request-Id")
    return inv


_RETRYABLE = (
    http.client.RemoteDisconnected,
    ConnectionResetError,
    ConnectionAbortedError,
    BrokenPipeError,
)


class RuntimeClient(object):
    def __init__(self, address):
        if not address:
            raise RuntimeApiError("AWS_LAMBDA_RUNTIME_API is not set")
        host, sep, port = address.rpartition(":")
        if not sep:
            host, port = address, "80"
        self._host = host
        self._port = int(port)
        self._host_header = address
        self._conn = None
        self._used = False

    def _connection(self):
        if self._conn is None:
            self._conn = _NoDelayConnection(self._host, self._port)
            self._conn.connect()
            self._used = False
        return self._conn

    def _reset(self):
        if self._conn is not None:
            try:
                self._conn.close()
            except Exception:
                pass
        self._conn = None

    def _request(self, method, path, body=None, headers=None):
        """One exchange on the keep-alive connection, spoken directly on its
        socket: http.client's request building and email-based header parsing
        cost more CPU per invocation than the rest of the loop (Strato is the
        only server this talks to, and it answers with Content-Length)."""
        if isinstance(body, str):
            body = body.encode("utf-8")
        head = ["%s %s HTTP/1.1\r\nHost: %s\r\n" % (method, path, self._host_header)]
        if headers:
            for name, value in headers.items():
                head.append("%s: %s\r\n" % (name, value))
        if body is not None:
            head.append("Content-Length: %d\r\n" % len(body))
        head.append("\r\n")
        request = "".join(head).encode("latin-1")
        if body:
            request += body
        for attempt in (0, 1):
            try:
                conn = self._connection()
                reused = self._used
                conn.sock.sendall(request)
                status, resp_headers, data = _read_response(conn.sock)
                self._used = True
                if resp_headers.get("connection", "").lower() == "close":
                    self._reset()
                return status, resp_headers, data
            except _RETRYABLE as e:
                # A keep-alive connection the server already dropped: reconnect
                # once. A failure on a fresh connection is fatal.
                self._reset()
                if attempt == 0 and reused:
                    continue
                raise RuntimeApiError(
                    "{} {} failed: {!r}".format(method, path, e)
                ) from e
            except (OSError, http.client.HTTPException) as e:
                self._reset()
                raise RuntimeApiError(
                    "{} {} failed: {!r}".format(method, path, e)
                ) from e
        raise RuntimeApiError("unreachable")  # pragma: no cover

    def _check(self, method, path, status, data, ok):
        if status not in ok:
            raise RuntimeApiError(
                "{} {} returned {}: {!r}".format(method, path, status, data[:512])
            )

    def assignment(self):
        path = API_PREFIX + "/strato/assignment"
        status, _, data = self._request("GET", path)
        self._check("GET", path, status, data, (200,))
        return json.loads(data)

    def wait_next_invocation(self):
        path = API_PREFIX + "/invocation/next"
        status, h, data = self._request("GET", path)
        self._check("GET", path, status, data, (200,))
        return _invocation(h, data)

    def _post(self, path, body, headers):
        status, _, data = self._request("POST", path, body, headers)
        self._report_post_status(path, status, data)
        return status

    def _report_post_status(self, path, status, data):
        if status >= 500:
            raise RuntimeApiError(
                "POST {} returned {}: {!r}".format(path, status, data[:512])
            )
        if status >= 300:
            # 4xx (e.g. 413 payload too large, 410 deadline passed): the
            # platform has recorded the outcome; keep serving.
            sys.stderr.write(
                "strato runtime: POST {} returned {}: {!r}\n".format(
                    path, status, data[:512]
                )
            )

    def post_result_then_next(self, invoke_id, body, content_type):
        """The response and the wait for the next event in one exchange
        (Strato's /strato/invocation/{id}/response-then-next): returns the
        next invocation, as wait_next_invocation does. A response Strato does
        not accept (too large, no longer in flight) is answered like
        /response and reported like _post reports it; the next event is then
        asked for on its own."""
        path = "{}/strato/invocation/{}/response-then-next".format(API_PREFIX, invoke_id)
        status, h, data = self._request("POST", path, body, {"Content-Type": content_type})
        if status == 200:
            return _invocation(h, data)
        self._report_post_status(path, status, data)
        return self.wait_next_invocation()

    def open_response_stream(self, invoke_id, content_type):
        """Starts a streamed (chunked) response; see _ResponseStream."""
        path = "{}/invocation/{}/response".format(API_PREFIX, invoke_id)
        for attempt in (0, 1):
            try:
                conn = self._connection()
                reused = self._used
                conn.putrequest("POST", path, skip_accept_encoding=True)
                conn.putheader("Content-Type", content_type)
                conn.putheader(RESPONSE_MODE_HEADER, "streaming")
                conn.putheader("Transfer-Encoding", "chunked")
                conn.putheader("Trailer", "{}, {}".format(ERROR_TYPE_HEADER, ERROR_BODY_TRAILER))
                conn.endheaders()
                self._used = True
                return _ResponseStream(self, conn, path)
            except _RETRYABLE as e:
                self._reset()
                if attempt == 0 and reused:
                    continue
                raise RuntimeApiError("POST {} failed: {!r}".format(path, e)) from e
            except (OSError, http.client.HTTPException) as e:
                self._reset()
                raise RuntimeApiError("POST {} failed: {!r}".format(path, e)) from e
        raise RuntimeApiError("unreachable")  # pragma: no cover

    def post_invocation_error(self, invoke_id, error_result):
        return self._post(
            "{}/invocation/{}/error".format(API_PREFIX, invoke_id),
            to_json(error_result).encode("utf-8"),
            {
                "Content-Type": "application/json",
                ERROR_TYPE_HEADER: error_result.get("errorType") or "Unhandled",
            },
        )

    def post_init_error(self, error_result):
        return self._post(
            API_PREFIX + "/init/error",
            to_json(error_result).encode("utf-8"),
            {
                "Content-Type": "application/json",
                ERROR_TYPE_HEADER: error_result.get("errorType") or "Unhandled",
            },
        )


# --------------------------------------------------------------------------
# Logging
# --------------------------------------------------------------------------


class _Unbuffered(object):
    def __init__(self, stream):
        self.stream = stream

    def __getattr__(self, attr):
        return getattr(self.stream, attr)

    def write(self, msg):
        n = self.stream.write(msg)
        self.stream.flush()
        return n

    def writelines(self, msgs):
        self.stream.writelines(msgs)
        self.stream.flush()


def _write_stdout(s):
    sys.stdout.write(s)


class _LambdaLogFilter(logging.Filter):
    def filter(self, record):
        record.aws_request_id = _CURRENT_REQUEST_ID or ""
        record.tenant_id = _CURRENT_TENANT_ID
        return True


class _LambdaLogHandler(logging.Handler):
    """One log record = one stdout line; embedded newlines become '\\r'."""

    def emit(self, record):
        try:
            msg = self.format(record)
            if msg.endswith("\n"):
                msg = msg[:-1]
            _write_stdout(msg.replace("\n", "\r") + "\n")
        except Exception:
            self.handleError(record)


_TEXT_FORMAT = "[%(levelname)s]\t%(asctime)s.%(msecs)03dZ\t%(aws_request_id)s\t%(message)s\n"
_DATE_FORMAT = "%Y-%m-%dT%H:%M:%S"
_JSON_RESERVED = {
    "name", "msg", "args", "levelname", "levelno", "pathname", "filename",
    "module", "exc_info", "exc_text", "stack_info", "lineno", "funcName",
    "created", "msecs", "relativeCreated", "thread", "threadName",
    "processName", "process", "aws_request_id", "tenant_id", "taskName",
}


class _JsonFormatter(logging.Formatter):
    def format(self, record):
        levelno = min(50, max(0, record.levelno)) // 10 * 10
        ts = time.strftime(_DATE_FORMAT, time.gmtime(record.created))
        result = {
            "timestamp": "%s.%03dZ" % (ts, int(record.msecs)),
            "level": logging.getLevelName(levelno),
            "message": record.getMessage(),
            "logger": record.name,
            "requestId": getattr(record, "aws_request_id", None),
        }
        if record.exc_info:
            result["stackTrace"] = traceback.format_tb(record.exc_info[2])
            result["errorType"] = record.exc_info[0].__name__
            result["errorMessage"] = str(record.exc_info[1])
            result["location"] = "%s:%s:%s" % (record.pathname, record.funcName, record.lineno)
        if getattr(record, "tenant_id", None) is not None:
            result["tenantId"] = record.tenant_id
        for k, v in record.__dict__.items():
            if k not in _JSON_RESERVED and k not in result:
                result[k] = v
        result = {k: v for k, v in result.items() if v is not None}
        return json.dumps(result, ensure_ascii=False, default=str)


_LOG_FORMAT = "TEXT"
_LOG_HANDLER = None


def setup_logging(log_format, log_level):
    """(Re)configure the root logger. Safe to call again after assignment."""
    global _LOG_FORMAT, _LOG_HANDLER
    _LOG_FORMAT = "JSON" if (log_format or "").upper() == "JSON" else "TEXT"
    logging.Formatter.converter = time.gmtime
    root = logging.getLogger()
    if _LOG_HANDLER is None:
        _LOG_HANDLER = _LambdaLogHandler()
        _LOG_HANDLER.addFilter(_LambdaLogFilter())
        root.addHandler(_LOG_HANDLER)
    if _LOG_FORMAT == "JSON":
        _LOG_HANDLER.setFormatter(_JsonFormatter())
    else:
        _LOG_HANDLER.setFormatter(logging.Formatter(_TEXT_FORMAT, _DATE_FORMAT))
    level = {"TRACE": "DEBUG"}.get((log_level or "").upper(), (log_level or "").upper())
    if level in ("DEBUG", "INFO", "WARNING", "WARN", "ERROR", "CRITICAL", "FATAL"):
        root.setLevel({"WARN": "WARNING", "FATAL": "CRITICAL"}.get(level, level))


# --------------------------------------------------------------------------
# Context
# --------------------------------------------------------------------------


class CognitoIdentity(object):
    __slots__ = ["cognito_identity_id", "cognito_identity_pool_id"]

    def __repr__(self):
        return "CognitoIdentity([cognito_identity_id={},cognito_identity_pool_id={}])".format(
            self.cognito_identity_id, self.cognito_identity_pool_id
        )


class Client(object):
    __slots__ = [
        "installation_id",
        "app_title",
        "app_version_name",
        "app_version_code",
        "app_package_name",
    ]

    def __repr__(self):
        return "Client([{}])".format(
            ",".join("{}={}".format(k, getattr(self, k)) for k in self.__slots__)
        )


class ClientContext(object):
    __slots__ = ["custom", "env", "client"]

    def __repr__(self):
        return "ClientContext([custom={},env={},client={}])".format(
            self.custom, self.env, self.client
        )


def _obj_from_dict(cls, d):
    if d is None:
        return None
    obj = cls()
    for field in cls.__slots__:
        setattr(obj, field, d.get(field, None) if isinstance(d, dict) else None)
    return obj


class LambdaContext(object):
    def __init__(self, config, invoke_id, client_context, cognito_identity,
                 deadline_ms, invoked_function_arn, tenant_id=None):
        self.aws_request_id = invoke_id
        self.log_group_name = config.log_group_name
        self.log_stream_name = config.log_stream_name
        self.function_name = config.function_name
        self.memory_limit_in_mb = config.memory_size
        self.function_version = config.function_version
        self.invoked_function_arn = invoked_function_arn
        self.tenant_id = tenant_id
        self.client_context = _obj_from_dict(ClientContext, client_context)
        if self.client_context is not None:
            self.client_context.client = _obj_from_dict(Client, self.client_context.client)
        self.identity = _obj_from_dict(CognitoIdentity, {})
        if cognito_identity is not None:
            self.identity.cognito_identity_id = cognito_identity.get("cognitoIdentityId")
            self.identity.cognito_identity_pool_id = cognito_identity.get("cognitoIdentityPoolId")
        self._deadline_ms = deadline_ms

    def get_remaining_time_in_millis(self):
        delta = self._deadline_ms - int(time.time() * 1000)
        return delta if delta > 0 else 0

    def log(self, msg):
        _write_stdout(str(msg))

    def __repr__(self):
        return (
            "LambdaContext([aws_request_id={},log_group_name={},log_stream_name={},"
            "function_name={},memory_limit_in_mb={},function_version={},"
            "invoked_function_arn={},client_context={},identity={},tenant_id={}])"
        ).format(
            self.aws_request_id, self.log_group_name, self.log_stream_name,
            self.function_name, self.memory_limit_in_mb, self.function_version,
            self.invoked_function_arn, self.client_context, self.identity,
            self.tenant_id,
        )


def _parse_json_header(value, name):
    try:
        return json.loads(value)
    except Exception as e:
        raise FaultException(
            FaultException.LAMBDA_CONTEXT_UNMARSHAL_ERROR,
            "Unable to parse {} JSON: {}".format(name, str(e)),
            None,
        )


# --------------------------------------------------------------------------
# Configuration (function-specific; read only after a stem-cell assignment)
# --------------------------------------------------------------------------


class Config(object):
    pass


def load_config():
    env = os.environ
    c = Config()
    c.handler = env.get("_HANDLER", "")
    c.task_root = env.get("LAMBDA_TASK_ROOT") or "/var/task"
    c.runtime_dir = env.get("LAMBDA_RUNTIME_DIR") or os.path.dirname(os.path.abspath(__file__))
    c.function_name = env.get("AWS_LAMBDA_FUNCTION_NAME")
    c.function_version = env.get("AWS_LAMBDA_FUNCTION_VERSION")
    c.memory_size = env.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE")
    c.log_group_name = env.get("AWS_LAMBDA_LOG_GROUP_NAME")
    c.log_stream_name = env.get("AWS_LAMBDA_LOG_STREAM_NAME")
    c.log_format = env.get("AWS_LAMBDA_LOG_FORMAT")
    c.log_level = env.get("AWS_LAMBDA_LOG_LEVEL")
    return c


def opt_site_packages():
    return "/opt/python/lib/python{}.{}/site-packages".format(*sys.version_info[:2])


def setup_sys_path(config, assigned_pythonpath=None):
    """sys.path = [task root, /opt/python/lib/pythonX.Y/site-packages, /opt/python,
    (3.11+: interpreter site-packages), <interpreter defaults>], as AWS orders it.
    When PYTHONPATH is set the /opt entries are not added (AWS behaviour)."""
    pythonpath_set = "PYTHONPATH" in os.environ
    if assigned_pythonpath:
        # The interpreter never saw this PYTHONPATH (it arrived with the
        # assignment): put its entries where the interpreter would have.
        for p in reversed([p for p in assigned_pythonpath.split(os.pathsep) if p]):
            sys.path.insert(0, p)
    if not pythonpath_set:
        if sys.version_info >= (3, 11):
            purelib = sysconfig.get_paths().get("purelib")
            if purelib:
                sys.path.insert(0, purelib)
        sys.path.insert(0, "/opt/python")
        sys.path.insert(0, opt_site_packages())
    sys.path.insert(0, config.task_root)
    # .pth files in the task root and layers
    site.addsitedir(config.task_root)
    if not pythonpath_set:
        site.addsitedir(opt_site_packages())
        site.addsitedir("/opt/python")
    if not pythonpath_set:
        os.environ["PYTHONPATH"] = config.runtime_dir
    importlib.invalidate_caches()


# --------------------------------------------------------------------------
# Response streaming (Strato's own design; AWS streams from Node.js only).
# A handler that is a generator function streams its response: every `bytes`
# or `str` it yields is sent to the caller as it is yielded. A `dict` yielded
# first is the HTTP answer's metadata for a function URL (statusCode,
# headers, cookies), as Node's awslambda.HttpResponseStream.from does.
# --------------------------------------------------------------------------

RESPONSE_MODE_HEADER = "Lambda-Runtime-Function-Response-Mode"
ERROR_BODY_TRAILER = "Lambda-Runtime-Function-Error-Body"
HTTP_INTEGRATION_CONTENT_TYPE = "application/vnd.awslambda.http-integration-response"
_CO_GENERATOR = 0x20  # inspect.CO_GENERATOR, without importing inspect


def is_streaming_handler(handler):
    code = getattr(handler, "__code__", None)
    return bool(getattr(code, "co_flags", 0) & _CO_GENERATOR)


class _ResponseStream(object):
    """One chunked POST to /response. The platform may answer before the
    body ends (a response over the size limit); what follows is dropped."""

    def __init__(self, client, conn, path):
        self._client = client
        self._conn = conn
        self._path = path
        self._broken = False

    def _send(self, data):
        if self._broken:
            return
        try:
            self._conn.send(data)
        except OSError:
            self._broken = True

    def write(self, chunk):
        if chunk:
            self._send(b"%x\r\n" % len(chunk) + chunk + b"\r\n")

    def end(self, error_result=None):
        last = b"0\r\n"
        if error_result is not None:
            body = base64.b64encode(to_json(error_result).encode("utf-8"))
            error_type = (error_result.get("errorType") or "Unhandled").encode("utf-8")
            last += b"%s: %s\r\n%s: %s\r\n" % (
                ERROR_TYPE_HEADER.encode(), error_type, ERROR_BODY_TRAILER.encode(), body,
            )
        self._send(last + b"\r\n")
        try:
            resp = self._conn.getresponse()
            data = resp.read()
        except (OSError, http.client.HTTPException):
            # The answer is lost with the connection; the platform has the
            # outcome (or ended the invocation). The next request reconnects.
            self._client._reset()
            return
        if resp.will_close:
            self._client._reset()
        if resp.status >= 300:
            sys.stderr.write(
                "strato runtime: POST {} returned {}: {!r}\n".format(self._path, resp.status, data[:512])
            )


def _chunk_bytes(item):
    if isinstance(item, (bytes, bytearray, memoryview)):
        return bytes(item)
    if isinstance(item, str):
        return item.encode("utf-8")
    raise TypeError(
        "A streaming handler yields bytes or str, not {}".format(type(item).__name__)
    )


def handle_streaming_invocation(client, config, request_handler, inv):
    invoke_id = inv.invoke_id
    stream = None
    error_result = None
    try:
        event, context = _prepare_invocation(config, inv)
        for item in request_handler(event, context):
            if stream is None and isinstance(item, dict):
                stream = client.open_response_stream(invoke_id, HTTP_INTEGRATION_CONTENT_TYPE)
                stream.write(to_json(item).encode("utf-8") + b"\0" * 8)
                continue
            chunk = _chunk_bytes(item)
            if stream is None:
                stream = client.open_response_stream(invoke_id, "application/octet-stream")
            stream.write(chunk)
    except RuntimeApiError:
        raise
    except FaultException as e:
        error_result = make_error(e.msg, e.exception_type, e.trace, invoke_id)
    except Exception:
        error_result = error_from_exc_info(sys.exc_info(), invoke_id)

    if error_result is not None:
        log_error(error_result)
        if stream is None:
            client.post_invocation_error(invoke_id, error_result)
            return None
    if stream is None:
        stream = client.open_response_stream(invoke_id, "application/octet-stream")
    stream.end(error_result)
    return None


# --------------------------------------------------------------------------
# Handler loading
# --------------------------------------------------------------------------


def get_handler(handler):
    try:
        modname, fname = handler.rsplit(".", 1)
    except ValueError as e:
        raise FaultException(
            FaultException.MALFORMED_HANDLER_NAME,
            "Bad handler '{}': {}".format(handler, str(e)),
        )
    try:
        if modname.split(".")[0] in sys.builtin_module_names:
            raise FaultException(
                FaultException.BUILT_IN_MODULE_CONFLICT,
                "Cannot use built-in module {} as a handler module".format(modname),
            )
        module = importlib.import_module(modname.replace("/", "."))
    except ImportError as e:
        raise FaultException(
            FaultException.IMPORT_MODULE_ERROR,
            "Unable to import module '{}': {}".format(modname, str(e)),
        )
    except SyntaxError as e:
        trace = ['  File "%s" Line %s\n    %s' % (e.filename, e.lineno, e.text)]
        raise FaultException(
            FaultException.USER_CODE_SYNTAX_ERROR,
            "Syntax error in module '{}': {}".format(modname, str(e)),
            trace,
        )
    try:
        return getattr(module, fname)
    except AttributeError:
        raise FaultException(
            FaultException.HANDLER_NOT_FOUND,
            "Handler '{}' missing on module '{}'".format(fname, modname),
            None,
        )


# --------------------------------------------------------------------------
# Invocation loop
# --------------------------------------------------------------------------


def _prepare_invocation(config, inv):
    """The invocation's globals and trace id; returns (event, context)."""
    global _CURRENT_REQUEST_ID, _CURRENT_TENANT_ID
    _CURRENT_REQUEST_ID = inv.invoke_id
    _CURRENT_TENANT_ID = inv.tenant_id
    if inv.trace_id is not None:
        os.environ["_X_AMZN_TRACE_ID"] = inv.trace_id
    else:
        os.environ.pop("_X_AMZN_TRACE_ID", None)
    client_context = None
    if inv.client_context:
        client_context = _parse_json_header(inv.client_context, "Client Context")
    cognito_identity = None
    if inv.cognito_identity:
        cognito_identity = _parse_json_header(inv.cognito_identity, "Cognito Identity")
    context = LambdaContext(
        config, inv.invoke_id, client_context, cognito_identity,
        inv.deadline_ms, inv.invoked_function_arn, inv.tenant_id,
    )
    return unmarshal_request(inv.body, inv.content_type), context


def handle_invocation(client, config, request_handler, inv):
    invoke_id = inv.invoke_id
    error_result = None
    try:
        event, context = _prepare_invocation(config, inv)
        response = request_handler(event, context)
        body, content_type = marshal_response(response)
    except FaultException as e:
        error_result = make_error(e.msg, e.exception_type, e.trace, invoke_id)
    except Exception:
        error_result = error_from_exc_info(sys.exc_info(), invoke_id)

    if error_result is not None:
        log_error(error_result)
        client.post_invocation_error(invoke_id, error_result)
        return None
    # The response's exchange brings the next invocation.
    return client.post_result_then_next(invoke_id, body, content_type)


def _fatal_api(e):
    sys.stderr.write("strato runtime: Runtime API failure: {}\n".format(e))
    sys.stderr.flush()
    sys.exit(EXIT_RUNTIME_API_ERROR)


def main():
    sys.stdout = _Unbuffered(sys.stdout)
    sys.stderr = _Unbuffered(sys.stderr)
    # Generic setup, valid before any function is known.
    setup_logging(os.environ.get("AWS_LAMBDA_LOG_FORMAT"), os.environ.get("AWS_LAMBDA_LOG_LEVEL"))
    try:
        client = RuntimeClient(os.environ.get("AWS_LAMBDA_RUNTIME_API"))
    except RuntimeApiError as e:
        _fatal_api(e)

    assigned_pythonpath = None
    if os.environ.get("STRATO_STEM_CELL") == "1":
        try:
            assignment = client.assignment()
        except (RuntimeApiError, ValueError) as e:
            _fatal_api(e)
        env = (assignment or {}).get("env") or {}
        os.environ.pop("STRATO_STEM_CELL", None)
        for k, v in env.items():
            os.environ[str(k)] = str(v)
        # Directories the import system listed before the code was mounted.
        importlib.invalidate_caches()
        assigned_pythonpath = env.get("PYTHONPATH")

    config = load_config()
    setup_logging(config.log_format, config.log_level)
    if os.path.isdir(config.task_root):
        # Always enter anew: a stem cell's code was mounted over the directory
        # this process started in, which the old handle would still show.
        try:
            os.chdir(config.task_root)
        except OSError:
            pass
    setup_sys_path(config, assigned_pythonpath)

    try:
        request_handler = get_handler(config.handler)
    except FaultException as e:
        error_result = make_error(e.msg, e.exception_type, e.trace)
        _report_init_error(client, error_result)
    except Exception:
        error_result = error_from_exc_info(sys.exc_info())
        _report_init_error(client, error_result)

    handle = handle_streaming_invocation if is_streaming_handler(request_handler) else handle_invocation
    try:
        # Each handle() returns the next invocation when its response's
        # exchange brought it, else None (then it is asked for here).
        inv = None
        while True:
            inv = handle(client, config, request_handler, inv or client.wait_next_invocation())
    except RuntimeApiError as e:
        _fatal_api(e)


def _report_init_error(client, error_result):
    log_error(error_result)
    try:
        client.post_init_error(error_result)
    except RuntimeApiError as e:
        sys.stderr.write("strato runtime: failed to report init error: {}\n".format(e))
    sys.exit(EXIT_INIT_ERROR)


if __name__ == "__main__":
    main()
