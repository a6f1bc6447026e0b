"""Node.js bootstrap against the fake Runtime API."""

import base64
import json
import re
import subprocess
import time

from conftest import NODE, NODE_BOOTSTRAP, WAIT, check_refused_response_then_next

TS = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z"
NODE_MAJOR = subprocess.check_output([NODE, "-p", "process.versions.node.split('.')[0]"]).decode().strip()


def _log_lines(out, rid, level):
    pat = re.compile("^" + TS + "\t" + re.escape(rid) + "\t" + level + "\t(.*)$")
    return [m.group(1) for m in (pat.match(l) for l in out.split("\n")) if m]


def test_hello_world_and_log_format(api, launch):
    b = launch("node", {"index.js": (
        "exports.handler = async (event) => {\n"
        "  console.log('hello %s', 'world', {a: 1});\n"
        "  console.info('info');\n"
        "  console.warn('warn');\n"
        "  console.error('error');\n"
        "  console.debug('debug');\n"
        "  console.trace('trace');\n"
        "  console.log('two\\nlines');\n"
        "  return 'hi';\n"
        "};\n"
        "console.log('at init');\n"
    )}, "index.handler")
    p = api.invoke({}, request_id="r-1")
    assert p.kind == "response" and p.json == "hi"
    assert p.headers["content-type"] == "application/json"
    out = b.wait_stdout("two")
    assert _log_lines(out, "r-1", "INFO") == ["hello world { a: 1 }", "info", "two\rlines"]
    assert _log_lines(out, "r-1", "WARN") == ["warn"]
    assert _log_lines(out, "r-1", "ERROR") == ["error"]
    assert _log_lines(out, "r-1", "DEBUG") == ["debug"]
    assert _log_lines(out, "r-1", "TRACE") == ["trace"]
    # init-phase records carry the literal request id "undefined", as on AWS
    assert _log_lines(out, "undefined", "INFO") == ["at init"]


def test_log_level_filter_and_json_format(api, launch):
    b = launch("node", {"index.js": (
        "exports.handler = async () => { console.debug('dbg'); console.info('inf'); console.warn('wrn', 1); return null; };"
    )}, "index.handler", env={"AWS_LAMBDA_LOG_LEVEL": "INFO", "AWS_LAMBDA_LOG_FORMAT": "JSON"})
    api.invoke({}, request_id="rj")
    out = b.wait_stdout("wrn")
    recs = [json.loads(l) for l in out.split("\n") if l.startswith("{")]
    assert [(r["level"], r["message"]) for r in recs] == [("INFO", "inf"), ("WARN", "wrn 1")]
    assert all(r["requestId"] == "rj" and re.match(TS + "$", r["timestamp"]) for r in recs)


def test_event_to_result_undefined_is_null(api, launch):
    launch("node", {"index.js": (
        "exports.handler = async (event) => event.none ? undefined : ({ sum: event.a + event.b });"
    )}, "index.handler")
    assert api.invoke({"a": 1, "b": 2}).json == {"sum": 3}
    assert api.invoke({"none": True}).body == "null"


def test_context_fields_and_env(api, launch):
    launch("node", {"index.js": (
        "exports.handler = async (event, context) => ({\n"
        "  awsRequestId: context.awsRequestId,\n"
        "  functionName: context.functionName,\n"
        "  functionVersion: context.functionVersion,\n"
        "  invokedFunctionArn: context.invokedFunctionArn,\n"
        "  memoryLimitInMB: context.memoryLimitInMB,\n"
        "  logGroupName: context.logGroupName,\n"
        "  logStreamName: context.logStreamName,\n"
        "  remaining: context.getRemainingTimeInMillis(),\n"
        "  identity: context.identity === undefined ? 'undef' : context.identity,\n"
        "  clientContext: context.clientContext === undefined ? 'undef' : context.clientContext,\n"
        "  cwfel: context.callbackWaitsForEmptyEventLoop,\n"
        "  fns: [typeof context.succeed, typeof context.fail, typeof context.done],\n"
        "  trace: process.env._X_AMZN_TRACE_ID === undefined ? null : process.env._X_AMZN_TRACE_ID,\n"
        "  region: process.env.AWS_REGION,\n"
        "});\n"
    )}, "index.handler")
    deadline = int(time.time() * 1000) + 50000
    r = api.invoke({}, request_id="ctx-1", deadline_ms=deadline, trace_id="Root=1-abc;Sampled=1",
                   arn="arn:aws:lambda:us-east-1:123456789012:function:fn:prod",
                   client_context={"custom": {"k": "v"}},
                   identity={"cognitoIdentityId": "id-1", "cognitoIdentityPoolId": "pool-1"}).json
    assert r["awsRequestId"] == "ctx-1"
    assert r["functionName"] == "fn"
    assert r["functionVersion"] == "$LATEST"
    assert r["invokedFunctionArn"] == "arn:aws:lambda:us-east-1:123456789012:function:fn:prod"
    assert r["memoryLimitInMB"] == "128"
    assert r["logGroupName"] == "/aws/lambda/fn"
    assert r["logStreamName"] == "2024/01/01/[$LATEST]abcdef"
    assert 0 < r["remaining"] <= 50000
    assert r["identity"] == {"cognitoIdentityId": "id-1", "cognitoIdentityPoolId": "pool-1"}
    assert r["clientContext"] == {"custom": {"k": "v"}}
    assert r["cwfel"] is True
    assert r["fns"] == ["function"] * 3
    assert r["trace"] == "Root=1-abc;Sampled=1"
    assert r["region"] == "us-east-1"
    r2 = api.invoke({}).json
    assert r2["trace"] is None and r2["identity"] == "undef" and r2["clientContext"] == "undef"


def test_globals_persist_across_invocations_on_one_connection(api, launch):
    launch("node", {"index.js": "let n = 0;\nexports.handler = async () => ++n;\n"}, "index.handler")
    assert [api.invoke({}).json for _ in range(3)] == [1, 2, 3]
    assert len(api.client_ports) == 1


def test_callback_handler_waits_for_empty_event_loop(api, launch):
    launch("node", {"index.js": (
        "let log = [];\n"
        "exports.handler = (event, context, callback) => {\n"
        "  if (event.report) return callback(null, log);\n"
        "  setTimeout(() => { log.push('timer ran'); }, 50);\n"
        "  callback(null, {ok: true});\n"
        "  log.push('after callback');\n"
        "};\n"
    )}, "index.handler")
    assert api.invoke({}).json == {"ok": True}
    # the response was only sent once the timer had run (event loop drained)
    assert api.invoke({"report": True}).json == ["after callback", "timer ran"]


def test_callback_waits_false_responds_immediately(api, launch):
    launch("node", {"index.js": (
        "let log = [];\n"
        "exports.handler = (event, context, callback) => {\n"
        "  if (event.report) { context.callbackWaitsForEmptyEventLoop = false; return callback(null, log.slice()); }\n"
        "  context.callbackWaitsForEmptyEventLoop = false;\n"
        "  setTimeout(() => { log.push('timer ran'); }, 300);\n"
        "  callback(null, 'fast');\n"
        "};\n"
    )}, "index.handler")
    assert api.invoke({}).json == "fast"
    # sent before the timer fired
    assert api.invoke({"report": True}).json == []


def test_callback_error_and_context_methods(api, launch):
    launch("node", {"index.js": (
        "exports.handler = (event, context, callback) => {\n"
        "  switch (event.mode) {\n"
        "    case 'cberr': return callback(new TypeError('cb failed'));\n"
        "    case 'succeed': return context.succeed({s: 1});\n"
        "    case 'fail': return context.fail(new Error('failed'));\n"
        "    case 'failnoarg': return context.fail();\n"
        "    case 'done': return context.done(null, 'done!');\n"
        "    case 'twice': callback(null, 'first'); return callback(null, 'second');\n"
        "    case 'sync': return 'ignored';\n"
        "  }\n"
        "};\n"
    )}, "index.handler")
    p = api.invoke({"mode": "cberr"})
    assert p.kind == "error" and p.json["errorType"] == "TypeError" and p.json["errorMessage"] == "cb failed"
    assert api.invoke({"mode": "succeed"}).json == {"s": 1}
    p = api.invoke({"mode": "fail"})
    assert p.kind == "error" and p.json["errorMessage"] == "failed"
    p = api.invoke({"mode": "failnoarg"})
    assert p.kind == "error" and p.json == {"errorType": "string", "errorMessage": "handled", "trace": []}
    assert api.invoke({"mode": "done"}).json == "done!"
    assert api.invoke({"mode": "twice"}).json == "first"
    # A sync non-callback handler's return value is ignored: null once the loop drains (AWS behaviour).
    assert api.invoke({"mode": "sync"}).body == "null"


def test_async_handler_never_settling(api, launch):
    b = launch("node", {"index.js": "exports.handler = async () => new Promise(() => {});\n"}, "index.handler")
    p = api.invoke({})
    assert p.kind == "error"
    assert p.json["errorType"] == "Runtime.NodeJsExit"
    assert "Promise that was never settled" in p.json["errorMessage"]
    # The line is written before the error is posted, but the test's reader thread may not have
    # pumped the pipe yet when the invoke answers.
    b.wait_stdout("Invoke Error")


def test_thrown_error_shape_and_log(api, launch):
    b = launch("node", {"index.js": (
        "class MyError extends Error { constructor(m) { super(m); this.name = 'MyError'; this.extra = 42; } }\n"
        "exports.handler = async (event) => {\n"
        "  if (event.kind === 'string') throw 'plain string';\n"
        "  if (event.kind === 'object') throw {a: 1};\n"
        "  throw new MyError('it broke');\n"
        "};\n"
    )}, "index.handler")
    p = api.invoke({}, request_id="e-1")
    assert p.kind == "error"
    assert p.headers["lambda-runtime-function-error-type"] == "MyError"
    e = p.json
    assert list(e) == ["errorType", "errorMessage", "trace"]
    assert e["errorType"] == "MyError" and e["errorMessage"] == "it broke"
    assert e["trace"][0] == "MyError: it broke"
    assert e["trace"][1].lstrip().startswith("at ") and "index.js" in e["trace"][1]
    out = b.wait_stdout("Invoke Error")
    [line] = _log_lines(out, "e-1", "ERROR")
    assert line.startswith("Invoke Error \t{")
    logged = json.loads(line[len("Invoke Error \t"):])
    assert logged["errorType"] == "MyError" and logged["errorMessage"] == "it broke"
    assert logged["extra"] == 42 and logged["stack"][0] == "MyError: it broke"

    p = api.invoke({"kind": "string"})
    assert p.json == {"errorType": "string", "errorMessage": "plain string", "trace": []}
    p = api.invoke({"kind": "object"})
    assert p.json == {"errorType": "object", "errorMessage": "[object Object]", "trace": []}


def test_non_serializable_results(api, launch):
    launch("node", {"index.js": (
        "exports.handler = async (event) => {\n"
        "  if (event.kind === 'bigint') return {n: 10n};\n"
        "  const o = {}; o.self = o; return o;\n"
        "};\n"
    )}, "index.handler")
    for kind in ("bigint", "circular"):
        p = api.invoke({"kind": kind})
        assert p.kind == "error"
        assert p.json["errorType"] == "Error"
        assert p.json["errorMessage"] == "Unable to stringify response body"
    assert api.invoke({"kind": "bigint"}).kind == "error"  # still serving


def test_esm_mjs_handler(api, launch):
    launch("node", {"index.mjs": (
        "import { helper } from './lib.mjs';\n"
        "const warm = await Promise.resolve('tla');\n"
        "export const handler = async (e) => ({ esm: helper(), warm, meta: typeof import.meta.url });\n"
    ), "lib.mjs": "export const helper = () => 'ok';\n"}, "index.handler")
    assert api.invoke({}).json == {"esm": "ok", "warm": "tla", "meta": "string"}


def test_esm_via_package_json_type_module(api, launch):
    launch("node", {
        "package.json": json.dumps({"type": "module"}),
        "src/app.js": "export const handlers = { main: async () => 'nested-esm' };\n",
    }, "src/app.handlers.main")
    assert api.invoke({}).json == "nested-esm"


def test_cjs_and_cjs_extension(api, launch):
    launch("node", {
        "package.json": json.dumps({"type": "module"}),
        "index.cjs": "module.exports.handler = async () => typeof require;\n",
    }, "index.handler")
    assert api.invoke({}).json == "function"


def test_task_node_modules_resolution(api, launch):
    launch("node", {
        "node_modules/dep/package.json": json.dumps({"name": "dep", "main": "main.js"}),
        "node_modules/dep/main.js": "module.exports = 'dep-value';\n",
        "index.js": "const dep = require('dep');\nexports.handler = async () => dep;\n",
    }, "index.handler")
    assert api.invoke({}).json == "dep-value"


def test_missing_module(api, launch):
    b = launch("node", {}, "nope.handler")
    p = api.wait_posted()
    assert p.kind == "init_error"
    assert b.wait_exit() == 129
    e = p.json
    assert p.headers["lambda-runtime-function-error-type"] == "Runtime.ImportModuleError"
    assert e["errorType"] == "Runtime.ImportModuleError"
    assert e["errorMessage"].startswith("Error: Cannot find module 'nope'\nRequire stack:\n- ")
    assert e["trace"][0] == "Runtime.ImportModuleError: Error: Cannot find module 'nope'"
    [line] = _log_lines(b.stdout, "undefined", "ERROR")
    assert line.startswith("Uncaught Exception \t{")
    assert json.loads(line[len("Uncaught Exception \t"):].replace("\r", "\n"))["errorType"] == "Runtime.ImportModuleError"


def test_missing_dependency_cjs(api, launch):
    b = launch("node", {"index.js": "require('not-installed');\nexports.handler = async () => 1;\n"}, "index.handler")
    p = api.wait_posted()
    assert p.kind == "init_error" and b.wait_exit() != 0
    assert p.json["errorType"] == "Runtime.ImportModuleError"
    assert p.json["errorMessage"].startswith("Error: Cannot find module 'not-installed'")


def test_missing_handler(api, launch):
    b = launch("node", {"index.js": "exports.handler = async () => 1;\nexports.notfn = 3;\n"}, "index.nope")
    p = api.wait_posted()
    assert p.kind == "init_error" and b.wait_exit() != 0
    assert p.json["errorType"] == "Runtime.HandlerNotFound"
    assert p.json["errorMessage"] == "index.nope is undefined or not exported"


def test_handler_not_a_function(api, launch):
    b = launch("node", {"index.js": "exports.notfn = 3;\n"}, "index.notfn")
    p = api.wait_posted()
    assert p.kind == "init_error" and b.wait_exit() != 0
    assert p.json["errorType"] == "Runtime.HandlerNotFound"
    assert p.json["errorMessage"] == "index.notfn is not a function"


def test_syntax_error(api, launch):
    b = launch("node", {"index.js": "exports.handler = async () => {;\n"}, "index.handler")
    p = api.wait_posted()
    assert p.kind == "init_error" and b.wait_exit() != 0
    assert p.json["errorType"] == "Runtime.UserCodeSyntaxError"
    assert p.json["errorMessage"].startswith("SyntaxError: ")


def test_malformed_handler(api, launch):
    for handler, msg in (("index", "Bad handler"),
                         ("../x.handler", "'../x.handler' is not a valid handler name. Use absolute paths when specifying root directories in handler names.")):
        b = launch("node", {"index.js": ""}, handler)
        p = api.wait_posted()
        assert p.kind == "init_error" and b.wait_exit() != 0
        assert p.json["errorType"] == "Runtime.MalformedHandlerName"
        assert p.json["errorMessage"] == msg


def test_init_throw(api, launch):
    b = launch("node", {"index.js": "throw new RangeError('bad init');\n"}, "index.handler")
    p = api.wait_posted()
    assert p.kind == "init_error" and b.wait_exit() == 129
    assert p.json["errorType"] == "RangeError" and p.json["errorMessage"] == "bad init"
    assert p.headers["lambda-runtime-function-error-type"] == "RangeError"


def test_uncaught_exception_during_invoke(api, launch):
    b = launch("node", {"index.js": (
        "exports.handler = (e, c, cb) => { setTimeout(() => { throw new Error('async boom'); }, 1); };\n"
    )}, "index.handler")
    p = api.invoke({}, request_id="u-1")
    assert p.kind == "error" and p.json["errorMessage"] == "async boom"
    assert b.wait_exit() == 129
    assert _log_lines(b.stdout, "u-1", "ERROR")[0].startswith("Uncaught Exception \t")


def test_unhandled_rejection_during_invoke(api, launch):
    b = launch("node", {"index.js": (
        "exports.handler = (e, c, cb) => { Promise.reject(new Error('rejected')); };\n"
    )}, "index.handler")
    p = api.invoke({})
    assert p.kind == "error"
    assert p.json["errorType"] == "Runtime.UnhandledPromiseRejection"
    assert p.json["errorMessage"] == "Error: rejected"
    assert b.wait_exit() == 128


def test_default_node_path_and_global_paths(api, launch, tmp_path):
    launch("node", {"index.js": (
        "const Module = require('module');\n"
        "exports.handler = async () => ({ nodePath: process.env.NODE_PATH, globalPaths: Module.globalPaths, paths: module.paths });\n"
    )}, "index.handler")
    r = api.invoke({}).json
    runtime_dir = str(NODE_BOOTSTRAP.parent)
    task = str(tmp_path / "task")
    expected = ["/opt/nodejs/node%s/node_modules" % NODE_MAJOR, "/opt/nodejs/node_modules",
                runtime_dir + "/node_modules", runtime_dir, task]
    assert r["nodePath"] == ":".join(expected)
    assert r["globalPaths"][:5] == expected
    # the task's own node_modules come first (module.paths), layers after (globalPaths)
    assert r["paths"][0] == task + "/node_modules"


def test_node_path_layer_resolution_cjs_and_esm(api, launch, tmp_path):
    layer = tmp_path / "layer" / "nodejs" / "node_modules"
    (layer / "layerdep").mkdir(parents=True)
    (layer / "layerdep" / "package.json").write_text(json.dumps({"name": "layerdep", "main": "index.js", "exports": {"import": "./index.mjs", "require": "./index.js"}}))
    (layer / "layerdep" / "index.js").write_text("module.exports = 'cjs-layer';\n")
    (layer / "layerdep" / "index.mjs").write_text("export default 'esm-layer';\n")
    launch("node", {
        "cjs.js": "exports.handler = async () => require('layerdep');\n",
        "esm.mjs": "import v from 'layerdep';\nexport const handler = async () => v;\n",
        "index.mjs": (
            "import { createRequire } from 'node:module';\n"
            "const require = createRequire(import.meta.url);\n"
            "export const handler = async () => [require('./cjs.js').handler, (await import('./esm.mjs')).handler];\n"
        ),
        "both.mjs": (
            "import { createRequire } from 'node:module';\n"
            "import esm from 'layerdep';\n"
            "const require = createRequire(import.meta.url);\n"
            "export const handler = async () => [require('layerdep'), esm];\n"
        ),
    }, "both.handler", env={"NODE_PATH": str(layer)})
    assert api.invoke({}).json == ["cjs-layer", "esm-layer"]


def test_stem_cell_assignment(api, launch, tmp_path):
    task = tmp_path / "assigned"
    (task / "sub").mkdir(parents=True)
    (task / "sub" / "app.js").write_text(
        "const Module = require('module');\n"
        "exports.handler = async (e, c) => ({ fn: c.functionName, mem: c.memoryLimitInMB, v: c.functionVersion,\n"
        "  custom: process.env.MY_VAR, cwd: process.cwd(), nodePath: process.env.NODE_PATH, gp: Module.globalPaths.slice(0, 5) });\n"
    )
    b = launch("node", {}, None, stem=True)
    end = time.time() + 30
    while ("GET", "/2018-06-01/runtime/strato/assignment") not in api.requests and time.time() < end:
        time.sleep(0.02)
    assert api.requests == [("GET", "/2018-06-01/runtime/strato/assignment")]
    api.assignments.put({
        "_HANDLER": "sub/app.handler",
        "LAMBDA_TASK_ROOT": str(task),
        "AWS_LAMBDA_FUNCTION_NAME": "assigned-fn",
        "AWS_LAMBDA_FUNCTION_VERSION": "7",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "256",
        "MY_VAR": "hello",
    })
    r = api.invoke({}).json
    assert (r["fn"], r["mem"], r["v"], r["custom"]) == ("assigned-fn", "256", "7", "hello")
    assert r["cwd"] == str(task)
    assert r["nodePath"].split(":")[-1] == str(task)
    assert r["gp"] == r["nodePath"].split(":")  # NODE_PATH applied after process start
    assert len(api.client_ports) == 1
    assert b.proc.poll() is None


def test_runtime_api_failure_exits_nonzero(api, launch):
    api.next_status = 500
    b = launch("node", {"index.js": "exports.handler = async () => 1;\n"}, "index.handler")
    assert b.wait_exit() not in (0, None)
    assert "Runtime API failure" in b.stderr


def test_a_refused_response_is_reported_and_the_next_event_still_arrives(api, launch):
    # Strato answers response-then-next with /response's refusal (413, 400)
    # and no event: the runtime logs it and asks for the next event itself.
    api.refuse_response = 413
    b = launch("node", {"index.js": "let n = 0;\nexports.handler = async () => ++n;\n"}, "index.handler")
    check_refused_response_then_next(api, b)


def test_survives_server_dropping_keepalive_connections(api, launch):
    api.drop_after_post = True
    b = launch("node", {"index.js": "let n = 0;\nexports.handler = async () => ++n;\n"}, "index.handler")
    assert [api.invoke({}).json for _ in range(4)] == [1, 2, 3, 4]
    assert len(api.client_ports) > 1
    assert b.proc.poll() is None


def test_streamify_response_streams_chunks_with_trailers_for_errors(api, launch):
    launch("node", {"index.mjs": (
        "import { pipeline } from 'node:stream/promises';\n"
        "import { Readable } from 'node:stream';\n"
        "export const handler = awslambda.streamifyResponse(async (event, responseStream, context) => {\n"
        "  if (event.mode === 'http') {\n"
        "    responseStream = awslambda.HttpResponseStream.from(responseStream, { statusCode: 201, headers: { 'x-a': 'b' } });\n"
        "  } else {\n"
        "    responseStream.setContentType('text/plain');\n"
        "  }\n"
        "  if (event.mode === 'throw') throw new Error('stream failed');\n"
        "  if (event.mode === 'pipeline') {\n"
        "    await pipeline(Readable.from(['a', 'b', 'c']), responseStream);\n"
        "    return;\n"
        "  }\n"
        "  responseStream.write('hello ');\n"
        "  if (event.mode === 'late-throw') throw new TypeError('broke mid-stream');\n"
        "  responseStream.write(context.awsRequestId);\n"
        "  responseStream.end();\n"
        "});\n"
    )}, "index.handler")
    p = api.invoke({"mode": "plain"}, request_id="s-1")
    assert p.kind == "response" and p.body == "hello s-1", p
    assert p.headers["content-type"] == "text/plain"
    assert p.headers["lambda-runtime-function-response-mode"] == "streaming"
    assert p.chunks == [b"hello ", b"s-1"]
    assert p.trailers == {}

    p = api.invoke({"mode": "http"}, request_id="s-2")
    assert p.headers["content-type"] == "application/vnd.awslambda.http-integration-response"
    prelude, _, rest = p.body.partition("\x00" * 8)
    assert json.loads(prelude) == {"statusCode": 201, "headers": {"x-a": "b"}}
    assert rest == "hello s-2"

    # Thrown before the first byte: an ordinary /error.
    p = api.invoke({"mode": "throw"})
    assert p.kind == "error" and p.json["errorMessage"] == "stream failed"

    # Thrown after it: the body ends with the error trailers.
    p = api.invoke({"mode": "late-throw"}, request_id="s-4")
    assert p.kind == "response" and p.body == "hello "
    assert p.trailers["lambda-runtime-function-error-type"] == "TypeError"
    error = json.loads(base64.b64decode(p.trailers["lambda-runtime-function-error-body"]))
    assert error["errorType"] == "TypeError" and error["errorMessage"] == "broke mid-stream"

    p = api.invoke({"mode": "pipeline"}, request_id="s-5")
    assert p.body == "abc" and p.trailers == {}


def test_streamed_chunks_reach_the_runtime_api_before_the_handler_returns(api, launch, tmp_path):
    launch("node", {"index.mjs": (
        "import fs from 'node:fs';\n"
        "export const handler = awslambda.streamifyResponse(async (event, responseStream) => {\n"
        "  responseStream.write('first');\n"
        "  while (!fs.existsSync(event.gate)) await new Promise((r) => setTimeout(r, 5));\n"
        "  responseStream.end('second');\n"
        "});\n"
    )}, "index.handler")
    gate = tmp_path / "gate"
    rid = api.enqueue({"gate": str(gate)})
    # The handler cannot finish until the gate exists, and the gate is only
    # made once the first chunk has arrived: a buffering runtime deadlocks
    # here (and fails on the hang guard).
    assert api.chunk_arrivals.get(timeout=WAIT) == b"first"
    gate.touch()
    p = api.wait_posted()
    assert p.request_id == rid and p.chunks == [b"first", b"second"]


def test_a_non_streaming_handler_posts_its_response_whole(api, launch):
    launch("node", {"index.js": "exports.handler = async () => ({ ok: true });\n"}, "index.handler")
    p = api.invoke({})
    assert p.chunks is None and p.json == {"ok": True}
    assert "lambda-runtime-function-response-mode" not in p.headers


def test_awslambda_global_can_be_disabled(api, launch):
    launch("node", {"index.js": "exports.handler = async () => typeof awslambda;\n"}, "index.handler",
           env={"AWS_LAMBDA_NODEJS_NO_GLOBAL_AWSLAMBDA": "1"})
    assert api.invoke({}).json == "undefined"
