"""Python bootstrap against the fake Runtime API."""

import base64
import json
import re
import subprocess
import time

from conftest import PYTHON, PYTHON_BOOTSTRAP, WAIT, check_refused_response_then_next

PY_XY = subprocess.check_output([PYTHON, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"]).decode().strip()
TS = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z"


def test_hello_world_and_log_format(api, launch):
    b = launch("python", {"index.py": (
        "import logging\n"
        "logger = logging.getLogger()\n"
        "logger.setLevel(logging.INFO)\n"
        "def handler(event, context):\n"
        "    print('hello from print')\n"
        "    logger.info('info %s', 'arg')\n"
        "    logger.warning('two\\nlines')\n"
        "    return 'hello'\n"
    )}, "index.handler")
    p = api.invoke({}, request_id="req-1")
    assert p.kind == "response"
    assert p.json == "hello"
    assert p.headers["content-type"] == "application/json"
    out = b.wait_stdout("two")
    assert "hello from print\n" in out
    assert re.search(r"^\[INFO\]\t" + TS + r"\treq-1\tinfo arg$", out, re.M), out
    # a multi-line record stays one stdout line; embedded newlines become \r
    assert re.search(r"^\[WARNING\]\t" + TS + r"\treq-1\ttwo\rlines$", out, re.M), out


def test_default_root_level_is_warning_and_log_level_env(api, launch):
    files = {"index.py": (
        "import logging\n"
        "def handler(event, context):\n"
        "    logging.getLogger().debug('dbg-msg')\n"
        "    logging.getLogger().info('info-msg')\n"
        "    logging.getLogger().warning('warn-msg')\n"
        "    return None\n"
    )}
    b = launch("python", files, "index.handler")
    assert api.invoke({}).body == "null"
    out = b.wait_stdout("warn-msg")
    assert "info-msg" not in out and "dbg-msg" not in out


def test_log_level_env_debug(api, launch):
    files = {"index.py": (
        "import logging\n"
        "def handler(event, context):\n"
        "    logging.getLogger().debug('dbg-msg')\n"
        "    return None\n"
    )}
    b = launch("python", files, "index.handler", env={"AWS_LAMBDA_LOG_LEVEL": "DEBUG"})
    api.invoke({})
    assert re.search(r"^\[DEBUG\]\t" + TS + r"\t[-0-9a-f]+\tdbg-msg$", b.wait_stdout("dbg-msg"), re.M)


def test_json_log_format(api, launch):
    files = {"index.py": (
        "import logging\n"
        "def handler(event, context):\n"
        "    logging.getLogger().warning('json-msg')\n"
        "    return None\n"
    )}
    b = launch("python", files, "index.handler", env={"AWS_LAMBDA_LOG_FORMAT": "JSON"})
    api.invoke({}, request_id="rj")
    line = [l for l in b.wait_stdout("json-msg").split("\n") if "json-msg" in l][0]
    rec = json.loads(line)
    assert rec["level"] == "WARNING" and rec["message"] == "json-msg" and rec["requestId"] == "rj"
    assert rec["logger"] == "root"
    assert re.match(TS + "$", rec["timestamp"])


def test_event_to_result_and_nested_module(api, launch):
    b = launch("python", {
        "pkg/__init__.py": "",
        "pkg/mod.py": "def handler(event, context):\n    return {'sum': event['a'] + event['b'], 'u': '\u00e9'}\n",
    }, "pkg/mod.handler")
    p = api.invoke({"a": 2, "b": 3})
    assert p.json == {"sum": 5, "u": "\u00e9"}


def test_dotted_module_path(api, launch):
    launch("python", {
        "pkg/__init__.py": "",
        "pkg/mod.py": "def handler(event, context):\n    return 'dotted'\n",
    }, "pkg.mod.handler")
    assert api.invoke({}).json == "dotted"


def test_context_fields_and_env(api, launch):
    b = launch("python", {"index.py": (
        "import os\n"
        "def handler(event, context):\n"
        "    cc = context.client_context\n"
        "    return {\n"
        "        'aws_request_id': context.aws_request_id,\n"
        "        'function_name': context.function_name,\n"
        "        'function_version': context.function_version,\n"
        "        'invoked_function_arn': context.invoked_function_arn,\n"
        "        'memory_limit_in_mb': context.memory_limit_in_mb,\n"
        "        'log_group_name': context.log_group_name,\n"
        "        'log_stream_name': context.log_stream_name,\n"
        "        'remaining': context.get_remaining_time_in_millis(),\n"
        "        'identity_id': context.identity.cognito_identity_id,\n"
        "        'identity_pool': context.identity.cognito_identity_pool_id,\n"
        "        'cc_custom': cc.custom if cc else None,\n"
        "        'cc_env': cc.env if cc else None,\n"
        "        'cc_installation_id': cc.client.installation_id if cc else None,\n"
        "        'trace': os.environ.get('_X_AMZN_TRACE_ID'),\n"
        "        'region': os.environ.get('AWS_REGION'),\n"
        "    }\n"
    )}, "index.handler")
    deadline = int(time.time() * 1000) + 50000
    p = api.invoke({}, request_id="ctx-1", deadline_ms=deadline, trace_id="Root=1-abc;Parent=def;Sampled=1",
                   arn="arn:aws:lambda:us-east-1:123456789012:function:fn:prod",
                   client_context={"custom": {"k": "v"}, "env": {"e": "1"}, "client": {"installation_id": "inst"}},
                   identity={"cognitoIdentityId": "id-1", "cognitoIdentityPoolId": "pool-1"})
    r = p.json
    assert r["aws_request_id"] == "ctx-1"
    assert r["function_name"] == "fn"
    assert r["function_version"] == "$LATEST"
    assert r["invoked_function_arn"] == "arn:aws:lambda:us-east-1:123456789012:function:fn:prod"
    assert r["memory_limit_in_mb"] == "128"
    assert r["log_group_name"] == "/aws/lambda/fn"
    assert r["log_stream_name"] == "2024/01/01/[$LATEST]abcdef"
    assert 0 < r["remaining"] <= 50000
    assert r["identity_id"] == "id-1" and r["identity_pool"] == "pool-1"
    assert r["cc_custom"] == {"k": "v"} and r["cc_env"] == {"e": "1"} and r["cc_installation_id"] == "inst"
    assert r["trace"] == "Root=1-abc;Parent=def;Sampled=1"
    assert r["region"] == "us-east-1"
    # Next invocation without a trace header clears _X_AMZN_TRACE_ID; no client context/identity.
    r2 = api.invoke({}).json
    assert r2["trace"] is None
    assert r2["cc_custom"] is None and r2["identity_id"] is None


def test_remaining_time_never_negative(api, launch):
    launch("python", {"index.py": "def handler(e, c):\n    return c.get_remaining_time_in_millis()\n"}, "index.handler")
    assert api.invoke({}, deadline_ms=1000).json == 0


def test_globals_persist_across_invocations_on_one_connection(api, launch):
    launch("python", {"index.py": (
        "count = 0\n"
        "def handler(event, context):\n"
        "    global count\n"
        "    count += 1\n"
        "    return count\n"
    )}, "index.handler")
    assert [api.invoke({}).json for _ in range(3)] == [1, 2, 3]
    assert len(api.client_ports) == 1  # one keep-alive connection for everything


def test_thrown_error_shape_and_log(api, launch):
    b = launch("python", {"index.py": (
        "class MyError(Exception):\n"
        "    pass\n"
        "def inner():\n"
        "    raise MyError('it broke')\n"
        "def handler(event, context):\n"
        "    inner()\n"
    )}, "index.handler")
    p = api.invoke({}, request_id="err-1")
    assert p.kind == "error"
    assert p.headers["lambda-runtime-function-error-type"] == "MyError"
    e = p.json
    assert set(e) == {"errorMessage", "errorType", "requestId", "stackTrace"}
    assert e["errorMessage"] == "it broke"
    assert e["errorType"] == "MyError"
    assert e["requestId"] == "err-1"
    # frames start at user code (runtime frames dropped), formatted like traceback.format_list
    assert e["stackTrace"][0].startswith('  File "') and "index.py" in e["stackTrace"][0]
    assert "in handler" in e["stackTrace"][0]
    assert "in inner" in e["stackTrace"][-1]
    assert all("bootstrap.py" not in f for f in e["stackTrace"])
    out = b.wait_stdout("[ERROR] MyError: it broke")
    line = [l for l in out.split("\n") if l.startswith("[ERROR] MyError")][0]
    parts = line.split("\r")
    assert parts[0] == "[ERROR] MyError: it broke"
    assert parts[1] == "Traceback (most recent call last):"
    assert parts[2].startswith("\u00a0\u00a0File \"")
    # still serving after an error
    b2 = api.invoke({})
    assert b2.kind == "error"


def test_non_serializable_result(api, launch):
    launch("python", {"index.py": "def handler(e, c):\n    return {1, 2}\n"}, "index.handler")
    p = api.invoke({}, request_id="m-1")
    assert p.kind == "error"
    assert p.json == {
        "errorMessage": "Unable to marshal response: Object of type set is not JSON serializable",
        "errorType": "Runtime.MarshalError",
        "requestId": "m-1",
        "stackTrace": [],
    }
    assert p.headers["lambda-runtime-function-error-type"] == "Runtime.MarshalError"


def test_decimal_and_bytes_results(api, launch):
    launch("python", {"index.py": (
        "import decimal\n"
        "def handler(e, c):\n"
        "    if e == 'bytes':\n"
        "        return b'raw-bytes'\n"
        "    return {'d': decimal.Decimal('2'), 'f': decimal.Decimal('1.5')}\n"
    )}, "index.handler")
    assert api.invoke({}).json == {"d": 2, "f": 1.5}
    p = api.invoke("bytes")
    assert p.body == "raw-bytes"
    assert p.headers["content-type"] == "application/unknown"


def _init_error(api, b):
    p = api.wait_posted()
    assert p.kind == "init_error"
    rc = b.wait_exit()
    assert rc != 0
    return p


def test_missing_module(api, launch):
    b = launch("python", {}, "nope.handler")
    p = _init_error(api, b)
    assert p.headers["lambda-runtime-function-error-type"] == "Runtime.ImportModuleError"
    assert p.json == {
        "errorMessage": "Unable to import module 'nope': No module named 'nope'",
        "errorType": "Runtime.ImportModuleError",
        "requestId": "",
        "stackTrace": [],
    }
    assert "[ERROR] Runtime.ImportModuleError: Unable to import module 'nope': No module named 'nope'\rTraceback (most recent call last):" in b.stdout


def test_missing_dependency_of_module(api, launch):
    b = launch("python", {"index.py": "import not_installed_dep\ndef handler(e, c):\n    pass\n"}, "index.handler")
    p = _init_error(api, b)
    assert p.json["errorType"] == "Runtime.ImportModuleError"
    assert p.json["errorMessage"] == "Unable to import module 'index': No module named 'not_installed_dep'"


def test_missing_handler(api, launch):
    b = launch("python", {"index.py": "def handler(e, c):\n    pass\n"}, "index.nope")
    p = _init_error(api, b)
    assert p.json == {
        "errorMessage": "Handler 'nope' missing on module 'index'",
        "errorType": "Runtime.HandlerNotFound",
        "requestId": "",
        "stackTrace": [],
    }


def test_syntax_error(api, launch):
    b = launch("python", {"index.py": "def handler(e, c)\n    pass\n"}, "index.handler")
    p = _init_error(api, b)
    e = p.json
    assert e["errorType"] == "Runtime.UserCodeSyntaxError"
    assert e["errorMessage"].startswith("Syntax error in module 'index': ")
    assert "index.py, line 1" in e["errorMessage"]
    assert e["stackTrace"][0].startswith('  File "') and " Line 1\n" in e["stackTrace"][0]


def test_malformed_handler(api, launch):
    b = launch("python", {"index.py": ""}, "index")
    p = _init_error(api, b)
    assert p.json["errorType"] == "Runtime.MalformedHandlerName"
    assert p.json["errorMessage"] == "Bad handler 'index': not enough values to unpack (expected 2, got 1)"


def test_exception_at_import_time(api, launch):
    b = launch("python", {"index.py": "raise ValueError('bad config')\n"}, "index.handler")
    p = _init_error(api, b)
    e = p.json
    assert e["errorType"] == "ValueError" and e["errorMessage"] == "bad config"
    assert any("index.py" in f for f in e["stackTrace"])


def test_builtin_module_conflict(api, launch):
    b = launch("python", {}, "sys.handler")
    p = _init_error(api, b)
    assert p.json["errorType"] == "Runtime.BuiltInModuleConflict"
    assert p.json["errorMessage"] == "Cannot use built-in module sys as a handler module"


def test_sys_path_order(api, launch, tmp_path):
    launch("python", {"index.py": "import sys, os\ndef handler(e, c):\n    return {'path': sys.path, 'pp': os.environ.get('PYTHONPATH')}\n"},
           "index.handler")
    r = api.invoke({}).json
    task = str(tmp_path / "task")
    path = r["path"]
    assert path[:3] == [task, "/opt/python/lib/python%s/site-packages" % PY_XY, "/opt/python"]
    runtime_dir = str(PYTHON_BOOTSTRAP.parent)
    assert runtime_dir in path
    assert r["pp"] == runtime_dir


def test_sys_path_with_pythonpath_set(api, launch, tmp_path):
    extra = tmp_path / "extra"
    extra.mkdir()
    (extra / "helper.py").write_text("VALUE = 'from-pythonpath'\n")
    launch("python", {"index.py": "import sys, helper\ndef handler(e, c):\n    return {'path': sys.path, 'v': helper.VALUE}\n"},
           "index.handler", env={"PYTHONPATH": str(extra)})
    r = api.invoke({}).json
    assert r["v"] == "from-pythonpath"
    assert r["path"][0] == str(tmp_path / "task")
    assert "/opt/python" not in r["path"]


def test_stem_cell_assignment(api, launch, tmp_path):
    task = tmp_path / "assigned"
    task.mkdir()
    (task / "app.py").write_text(
        "import os, sys\n"
        "def handler(e, c):\n"
        "    return {'fn': c.function_name, 'mem': c.memory_limit_in_mb, 'custom': os.environ.get('MY_VAR'),\n"
        "            'cwd': os.getcwd(), 'path0': sys.path[:3]}\n"
    )
    b = launch("python", {}, None, stem=True)
    # The stem cell waits for its assignment before anything function-specific.
    import time
    end = time.time() + 30
    while ("GET", "/2018-06-01/runtime/strato/assignment") not in api.requests and time.time() < end:
        time.sleep(0.02)
    assert api.requests == [("GET", "/2018-06-01/runtime/strato/assignment")]
    api.assignments.put({
        "_HANDLER": "app.handler",
        "LAMBDA_TASK_ROOT": str(task),
        "AWS_LAMBDA_FUNCTION_NAME": "assigned-fn",
        "AWS_LAMBDA_FUNCTION_VERSION": "7",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "256",
        "AWS_LAMBDA_LOG_GROUP_NAME": "/aws/lambda/assigned-fn",
        "AWS_LAMBDA_LOG_STREAM_NAME": "s",
        "MY_VAR": "hello",
    })
    r = api.invoke({}).json
    assert r["fn"] == "assigned-fn" and r["mem"] == "256" and r["custom"] == "hello"
    assert r["cwd"] == str(task)
    assert r["path0"] == [str(task), "/opt/python/lib/python%s/site-packages" % PY_XY, "/opt/python"]
    assert len(api.client_ports) == 1
    assert b.proc.poll() is None


def test_stem_cell_init_error_after_assignment(api, launch, tmp_path):
    b = launch("python", {}, None, stem=True)
    api.assignments.put({"_HANDLER": "missing.handler", "LAMBDA_TASK_ROOT": str(tmp_path)})
    p = _init_error(api, b)
    assert p.json["errorType"] == "Runtime.ImportModuleError"


def test_runtime_api_failure_exits_nonzero(api, launch):
    api.next_status = 500
    b = launch("python", {"index.py": "def handler(e, c):\n    return 1\n"}, "index.handler")
    assert b.wait_exit() != 0
    assert "Runtime API failure" in b.stderr


def test_handler_sys_exit_terminates(api, launch):
    b = launch("python", {"index.py": "import sys\ndef handler(e, c):\n    sys.exit(3)\n"}, "index.handler")
    api.enqueue({})
    assert b.wait_exit() == 3


def test_a_refused_response_is_reported_and_the_next_event_still_arrives(api, launch):
    # Strato answers response-then-next with /response's refusal (413, 400)
    # and no event: the runtime logs it and asks for the next event itself.
    api.refuse_response = 413
    b = launch("python", {"index.py": "n = 0\ndef handler(e, c):\n    global n\n    n += 1\n    return n\n"}, "index.handler")
    check_refused_response_then_next(api, b)


def test_survives_server_dropping_keepalive_connections(api, launch):
    api.drop_after_post = True
    b = launch("python", {"index.py": "n = 0\ndef handler(e, c):\n    global n\n    n += 1\n    return n\n"}, "index.handler")
    assert [api.invoke({}).json for _ in range(4)] == [1, 2, 3, 4]
    assert len(api.client_ports) > 1
    assert b.proc.poll() is None


def test_a_generator_handler_streams_its_chunks(api, launch):
    launch("python", {"app.py": (
        "def handler(event, context):\n"
        "    if event.get('http'):\n"
        "        yield {'statusCode': 202, 'headers': {'x-a': 'b'}}\n"
        "    yield 'hello '\n"
        "    if event.get('fail'):\n"
        "        raise ValueError('broke mid-stream')\n"
        "    yield context.aws_request_id.encode()\n"
    )}, "app.handler")
    p = api.invoke({}, request_id="g-1")
    assert p.kind == "response" and p.chunks == [b"hello ", b"g-1"] and p.trailers == {}
    assert p.headers["lambda-runtime-function-response-mode"] == "streaming"
    assert p.headers["content-type"] == "application/octet-stream"

    p = api.invoke({"http": True}, request_id="g-2")
    assert p.headers["content-type"] == "application/vnd.awslambda.http-integration-response"
    prelude, _, rest = p.body.partition("\x00" * 8)
    assert json.loads(prelude) == {"statusCode": 202, "headers": {"x-a": "b"}}
    assert rest == "hello g-2"

    p = api.invoke({"fail": True}, request_id="g-3")
    assert p.kind == "response" and p.body == "hello "
    assert p.trailers["lambda-runtime-function-error-type"] == "ValueError"
    error = json.loads(base64.b64decode(p.trailers["lambda-runtime-function-error-body"]))
    assert error["errorMessage"] == "broke mid-stream"

    # The connection stays usable after a streamed response.
    assert api.invoke({}, request_id="g-4").body == "hello g-4"


def test_a_generator_failing_before_its_first_chunk_posts_an_error(api, launch):
    launch("python", {"app.py": (
        "def handler(event, context):\n"
        "    raise KeyError('early')\n"
        "    yield b''\n"
    )}, "app.handler")
    p = api.invoke({})
    assert p.kind == "error" and p.json["errorType"] == "KeyError"


def test_streamed_chunks_leave_a_generator_before_it_returns(api, launch, tmp_path):
    launch("python", {"app.py": (
        "import os, time\n"
        "def handler(event, context):\n"
        "    yield b'first'\n"
        "    while not os.path.exists(event['gate']):\n"
        "        time.sleep(0.005)\n"
        "    yield b'second'\n"
    )}, "app.handler")
    gate = tmp_path / "gate"
    rid = api.enqueue({"gate": str(gate)})
    # The generator cannot end before the gate exists, which is only made
    # once the first chunk has arrived.
    assert api.chunk_arrivals.get(timeout=WAIT) == b"first"
    gate.touch()
    p = api.wait_posted()
    assert p.request_id == rid and p.chunks == [b"first", b"second"]
