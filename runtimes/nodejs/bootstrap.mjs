// Strato Node.js runtime bootstrap.
//
// Speaks the AWS Lambda Runtime API (2018-06-01) at http://$AWS_LAMBDA_RUNTIME_API
// and behaves, as seen by a function author, like the AWS managed nodejs18.x /
// 20.x / 22.x runtimes: handler resolution (CJS/ESM), callback and async
// handlers, callbackWaitsForEmptyEventLoop, the context object, console log
// format and error shapes.
//
// Node 18+, node: built-ins only. Started as `node /var/runtime/bootstrap.mjs`
// with cwd = LAMBDA_TASK_ROOT.
//
// Stem-cell mode (STRATO_STEM_CELL=1): everything generic is loaded first, then
// GET /2018-06-01/runtime/strato/assignment blocks until the platform assigns a
// function; its {"env": {...}} is merged into process.env and only then is
// function-specific configuration read (loadConfig()).

import http from 'node:http';
import net from 'node:net';
import fs from 'node:fs';
import path from 'node:path';
import util from 'node:util';
import Module, { createRequire } from 'node:module';
import { pathToFileURL, fileURLToPath } from 'node:url';
import { Writable } from 'node:stream';

const RUNTIME_FILE = fileURLToPath(import.meta.url);
const RUNTIME_DIR = path.dirname(RUNTIME_FILE);
const require = createRequire(import.meta.url);
const API_PREFIX = '/2018-06-01/runtime';
const ERROR_TYPE_HEADER = 'Lambda-Runtime-Function-Error-Type';
const EXIT_RUNTIME_API_ERROR = 2;

// ---------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------

function runtimeErrorClass(name) {
  const cls = {
    [name]: class extends Error {},
  }[name];
  cls.prototype.name = `Runtime.${name}`;
  return cls;
}
const ImportModuleError = runtimeErrorClass('ImportModuleError');
const HandlerNotFound = runtimeErrorClass('HandlerNotFound');
const CallbackHandlerDeprecated = runtimeErrorClass('CallbackHandlerDeprecated');
const MalformedHandlerName = runtimeErrorClass('MalformedHandlerName');
const UserCodeSyntaxError = runtimeErrorClass('UserCodeSyntaxError');
const NodeJsExit = runtimeErrorClass('NodeJsExit');
class UnhandledPromiseRejection extends Error {
  constructor(reason, promise) {
    super(reason);
    this.reason = reason;
    this.promise = promise;
  }
}
UnhandledPromiseRejection.prototype.name = 'Runtime.UnhandledPromiseRejection';

const NODEJS_EXIT_MESSAGE =
  'The Lambda runtime client detected an unexpected Node.js exit code. This is most commonly caused by a Promise that was never settled. For more information, see https://nodejs.org/docs/latest/api/process.html#exit-codes';

function looksLikeError(obj) {
  return (
    obj &&
    typeof obj.name === 'string' && obj.name &&
    typeof obj.message === 'string' && obj.message &&
    typeof obj.stack === 'string' && obj.stack
  );
}

function intoError(err) {
  return err instanceof Error ? err : new Error(err);
}

// Body POSTed to /invocation/{id}/error and /init/error.
function toRapidResponse(error) {
  try {
    if (util.types.isNativeError(error) || looksLikeError(error)) {
      return {
        errorType: error.name,
        errorMessage: error.message,
        trace: error.stack.split('\n'),
      };
    }
    return {
      errorType: typeof error,
      errorMessage: error.toString(),
      trace: [],
    };
  } catch (_e) {
    return {
      errorType: 'handled',
      errorMessage:
        'callback called with Error argument, but there was a problem while retrieving one or more of its message, name, and stack',
    };
  }
}

function withEnumerableProperties(value) {
  if (value instanceof Error) {
    const ret = Object.assign(
      { errorType: value.name, errorMessage: value.message, code: value.code },
      value,
    );
    if (typeof value.stack === 'string') ret.stack = value.stack.split('\n');
    return ret;
  }
  return value;
}

// Text used after "Invoke Error" / "Uncaught Exception" in the ERROR log line.
function toFormatted(error) {
  try {
    return '\t' + JSON.stringify(error, (_k, v) => withEnumerableProperties(v));
  } catch (_e) {
    return '\t' + JSON.stringify(toRapidResponse(error));
  }
}

// ---------------------------------------------------------------------------
// Logging: console.* -> "<ISO time>\t<request id>\t<LEVEL>\t<message>\n"
// Newlines inside one record become '\r' so that a record is one stdout line.
// ---------------------------------------------------------------------------

const REQUEST_ID = Symbol.for('aws.lambda.runtime.requestId');
const LEVELS = Object.freeze({
  TRACE: { name: 'TRACE', priority: 1 },
  DEBUG: { name: 'DEBUG', priority: 2 },
  INFO: { name: 'INFO', priority: 3 },
  WARN: { name: 'WARN', priority: 4 },
  ERROR: { name: 'ERROR', priority: 5 },
  FATAL: { name: 'FATAL', priority: 6 },
});

function logText(level, message, ...params) {
  const line = `${new Date().toISOString()}\t${globalThis[REQUEST_ID]}\t${level.name}\t${util.format(message, ...params)}`;
  process.stdout.write(line.replace(/\n/g, '\r') + '\n');
}

function jsonErrorReplacer(_k, value) {
  if (value instanceof Error) {
    return Object.assign(
      {
        errorType: value?.constructor?.name ?? 'UnknownError',
        errorMessage: value.message,
        stackTrace: typeof value.stack === 'string' ? value.stack.split('\n') : value.stack,
      },
      value,
    );
  }
  return value;
}

function logJson(level, message, ...params) {
  const result = {
    timestamp: new Date().toISOString(),
    level: level.name,
    requestId: globalThis[REQUEST_ID],
  };
  let line;
  if (params.length === 0) {
    result.message = message;
    try {
      line = JSON.stringify(result, jsonErrorReplacer);
    } catch (_e) {
      result.message = util.format(message);
      line = JSON.stringify(result);
    }
  } else {
    result.message = util.format(message, ...params);
    for (const p of [message, ...params]) {
      if (p instanceof Error) {
        result.errorType = p?.constructor?.name ?? 'UnknownError';
        result.errorMessage = p.message;
        result.stackTrace = typeof p.stack === 'string' ? p.stack.split('\n') : [];
        break;
      }
    }
    line = JSON.stringify(result);
  }
  process.stdout.write(line.replace(/\n/g, '\r') + '\n');
}

let structuredLogError = (msg, err) => console.error(msg, toFormatted(intoError(err)));

function patchConsole(logFormat, logLevel) {
  const json = (logFormat || '').toUpperCase() === 'JSON';
  const log = json ? logJson : logText;
  const min = LEVELS[(logLevel || '').toUpperCase()] ?? LEVELS.TRACE;
  const nop = () => {};
  const mk = (level) => (level.priority >= min.priority ? (m, ...p) => log(level, m, ...p) : nop);
  console.trace = mk(LEVELS.TRACE);
  console.debug = mk(LEVELS.DEBUG);
  console.info = mk(LEVELS.INFO);
  console.log = console.info;
  console.warn = mk(LEVELS.WARN);
  console.error = mk(LEVELS.ERROR);
  console.fatal = (m, ...p) => log(LEVELS.FATAL, m, ...p);
  structuredLogError = json
    ? (_msg, err) => console.error(intoError(err))
    : (msg, err) => console.error(msg, toFormatted(intoError(err)));
}

// ---------------------------------------------------------------------------
// Runtime API client: one keep-alive connection, TCP_NODELAY.
//
// Strato is the only peer, so the whole-body calls (next, response, error,
// init error, assignment) speak minimal HTTP/1.1 on a raw `net` socket: one
// write per request, the answer parsed from its Content-Length (or chunked)
// body. `node:http` with an Agent costs several times the CPU per call; it is
// kept for streamed responses only, on a connection of their own.
// ---------------------------------------------------------------------------

class RuntimeApiError extends Error {}
const STALE_SOCKET_CODES = new Set(['ECONNRESET', 'EPIPE', 'ECONNABORTED']);
const CRLF2 = Buffer.from('\r\n\r\n');

// Parses one HTTP/1.1 response from `buf`: null until it is complete, else
// { status, headers, body, rest, close }.
function parseResponse(buf) {
  const end = buf.indexOf(CRLF2);
  if (end < 0) return null;
  const lines = buf.toString('latin1', 0, end).split('\r\n');
  const status = parseInt(lines[0].split(' ')[1], 10);
  const headers = {};
  for (let i = 1; i < lines.length; i++) {
    const c = lines[i].indexOf(':');
    if (c <= 0) continue;
    const name = lines[i].slice(0, c).trim().toLowerCase();
    const value = lines[i].slice(c + 1).trim();
    headers[name] = name in headers ? `${headers[name]}, ${value}` : value;
  }
  const close = /\bclose\b/i.test(headers.connection || '');
  let at = end + 4;
  if (/\bchunked\b/i.test(headers['transfer-encoding'] || '')) {
    const parts = [];
    for (;;) {
      const eol = buf.indexOf('\r\n', at);
      if (eol < 0) return null;
      const size = parseInt(buf.toString('latin1', at, eol), 16);
      if (Number.isNaN(size)) throw new RuntimeApiError('malformed chunked response');
      if (size === 0) {
        // Trailers, if any, end with an empty line.
        const trailerEnd = buf.indexOf(CRLF2, eol);
        if (trailerEnd < 0) return null;
        const rest = buf.subarray(trailerEnd + 4);
        return { status, headers, body: Buffer.concat(parts).toString('utf8'), rest, close };
      }
      if (buf.length < eol + 2 + size + 2) return null;
      parts.push(buf.subarray(eol + 2, eol + 2 + size));
      at = eol + 2 + size + 2;
    }
  }
  const length = parseInt(headers['content-length'] || '0', 10);
  if (buf.length < at + length) return null;
  return { status, headers, body: buf.toString('utf8', at, at + length), rest: buf.subarray(at + length), close };
}

class RapidClient {
  constructor(hostPort) {
    if (!hostPort) throw new RuntimeApiError('AWS_LAMBDA_RUNTIME_API is not set');
    const i = hostPort.lastIndexOf(':');
    this.hostname = i < 0 ? hostPort : hostPort.slice(0, i);
    this.port = i < 0 ? 80 : parseInt(hostPort.slice(i + 1), 10);
    if (this.hostname.startsWith('[') && this.hostname.endsWith(']')) {
      this.hostname = this.hostname.slice(1, -1);
    }
    this.hostHeader = hostPort;
    // Streamed responses only (see createResponseStream).
    this.agent = new http.Agent({ keepAlive: true, maxSockets: 1, noDelay: true });
    this.socket = null;
    this.used = false; // whether the open socket has carried a request already
    this.pending = null; // { resolve, reject, buf }
    this.chain = Promise.resolve();
  }

  request(method, urlPath, body, headers) {
    // One request at a time on the one connection.
    const run = () =>
      this.requestOnce(method, urlPath, body, headers).catch((err) => {
        // A keep-alive socket the server already closed: retry once on a
        // fresh connection. Failures on a fresh connection are fatal.
        if (err.reusedSocket && STALE_SOCKET_CODES.has(err.code)) {
          return this.requestOnce(method, urlPath, body, headers);
        }
        throw err;
      });
    const result = this.chain.then(run, run);
    this.chain = result.catch(() => {});
    return result;
  }

  connect() {
    const socket = net.connect({ host: this.hostname, port: this.port, noDelay: true });
    socket.setNoDelay(true);
    this.socket = socket;
    this.used = false;
    let buf = Buffer.alloc(0);
    const fail = (code, message) => {
      if (this.socket === socket) this.socket = null;
      const p = this.pending;
      this.pending = null;
      if (p) {
        const err = new RuntimeApiError(`${p.what}: ${message}`);
        err.code = code;
        err.reusedSocket = p.reused;
        p.reject(err);
      }
    };
    socket.on('data', (chunk) => {
      buf = buf.length ? Buffer.concat([buf, chunk]) : chunk;
      if (!this.pending) return;
      let res;
      try {
        res = parseResponse(buf);
      } catch (e) {
        socket.destroy();
        fail('EPROTO', e.message);
        return;
      }
      if (!res) return;
      buf = res.rest;
      const p = this.pending;
      this.pending = null;
      if (res.close) {
        if (this.socket === socket) this.socket = null;
        socket.end();
      }
      // An idle connection must not keep the event loop alive (as an Agent's
      // free sockets do not): callback handlers answer when it drains.
      socket.unref();
      p.resolve({ status: res.status, headers: res.headers, body: res.body });
    });
    socket.on('error', (e) => fail(e.code || 'ECONNRESET', e.message));
    socket.on('close', () => fail('ECONNRESET', 'socket hang up'));
    return socket;
  }

  requestOnce(method, urlPath, body, headers) {
    return new Promise((resolve, reject) => {
      const socket = this.socket && !this.socket.destroyed ? this.socket : this.connect();
      const payload = body === undefined ? null : Buffer.from(body, 'utf8');
      let head = `${method} ${urlPath} HTTP/1.1\r\nHost: ${this.hostHeader}\r\n`;
      for (const [k, v] of Object.entries(headers || {})) head += `${k}: ${v}\r\n`;
      head += `Content-Length: ${payload ? payload.length : 0}\r\n\r\n`;
      const what = `${method} ${urlPath}`;
      this.pending = { resolve, reject, what, reused: this.used };
      this.used = true;
      socket.ref();
      socket.write(payload && payload.length ? Buffer.concat([Buffer.from(head, 'latin1'), payload]) : head);
    });
  }

  async get(urlPath) {
    const res = await this.request('GET', urlPath);
    if (res.status !== 200) {
      throw new RuntimeApiError(`GET ${urlPath} returned ${res.status}: ${res.body.slice(0, 512)}`);
    }
    return res;
  }

  async post(urlPath, body, headers) {
    const res = await this.request('POST', urlPath, body, headers);
    this.reportPostStatus(urlPath, res);
    return res;
  }

  reportPostStatus(urlPath, res) {
    if (res.status >= 500) {
      throw new RuntimeApiError(`POST ${urlPath} returned ${res.status}: ${res.body.slice(0, 512)}`);
    }
    if (res.status >= 300) {
      // 4xx (payload too large, deadline passed...): the platform has the outcome.
      process.stderr.write(`strato runtime: POST ${urlPath} returned ${res.status}: ${res.body.slice(0, 512)}\n`);
    }
  }

  async assignment() {
    const res = await this.get(`${API_PREFIX}/strato/assignment`);
    return JSON.parse(res.body || '{}');
  }

  nextInvocation() {
    return this.get(`${API_PREFIX}/invocation/next`);
  }

  // The response and the wait for the next event in one exchange (Strato's
  // `/strato/invocation/{id}/response-then-next`): resolves to the next
  // invocation, as nextInvocation() does. A response Strato does not accept
  // (too large, no longer in flight) is answered like `/response` and reported
  // like post() reports it; the next event is then asked for on its own.
  async postResponseThenNext(body, id, contentType = 'application/json') {
    const urlPath = `${API_PREFIX}/strato/invocation/${encodeURIComponent(id)}/response-then-next`;
    const res = await this.request('POST', urlPath, body, { 'Content-Type': contentType });
    if (res.status === 200) return res;
    this.reportPostStatus(urlPath, res);
    return this.nextInvocation();
  }

  postInvocationError(error, id) {
    const response = toRapidResponse(error);
    return this.post(`${API_PREFIX}/invocation/${encodeURIComponent(id)}/error`, JSON.stringify(response), {
      'Content-Type': 'application/json',
      [ERROR_TYPE_HEADER]: String(response.errorType),
    });
  }

  postInitError(error) {
    const response = toRapidResponse(error);
    return this.post(`${API_PREFIX}/init/error`, JSON.stringify(response), {
      'Content-Type': 'application/json',
      [ERROR_TYPE_HEADER]: String(response.errorType),
    });
  }
}

function fatalApi(err) {
  process.stderr.write(`strato runtime: Runtime API failure: ${err && err.message}\n`);
  process.exit(EXIT_RUNTIME_API_ERROR);
}

// Serialize as AWS does: undefined -> null; failures -> a fixed error.
function serializeResponse(result) {
  try {
    return JSON.stringify(result === undefined ? null : result);
  } catch (_e) {
    throw new Error('Unable to stringify response body');
  }
}

// ---------------------------------------------------------------------------
// Configuration (function-specific; read only after a stem-cell assignment)
// ---------------------------------------------------------------------------

function loadConfig() {
  const env = process.env;
  return {
    handler: env._HANDLER,
    taskRoot: env.LAMBDA_TASK_ROOT || '/var/task',
    runtimeDir: env.LAMBDA_RUNTIME_DIR || RUNTIME_DIR,
    functionName: env.AWS_LAMBDA_FUNCTION_NAME,
    functionVersion: env.AWS_LAMBDA_FUNCTION_VERSION,
    memoryLimitInMB: env.AWS_LAMBDA_FUNCTION_MEMORY_SIZE,
    logGroupName: env.AWS_LAMBDA_LOG_GROUP_NAME,
    logStreamName: env.AWS_LAMBDA_LOG_STREAM_NAME,
    logFormat: env.AWS_LAMBDA_LOG_FORMAT,
    logLevel: env.AWS_LAMBDA_LOG_LEVEL,
  };
}

// NODE_PATH as AWS sets it (unless already set), applied to CommonJS
// resolution even when it changes after process start (stem cells), and to
// bare ESM imports through a resolve hook when a node_modules entry exists.
function setupModulePaths(config) {
  if (!process.env.NODE_PATH) {
    const major = process.versions.node.split('.')[0];
    process.env.NODE_PATH = [
      `/opt/nodejs/node${major}/node_modules`,
      '/opt/nodejs/node_modules',
      `${config.runtimeDir}/node_modules`,
      config.runtimeDir,
      config.taskRoot,
    ].join(path.delimiter);
  }
  Module._initPaths();
  registerEsmNodePathResolver(process.env.NODE_PATH);
}

// Node.js starts a worker thread for module hooks (~26 ms here), so a stem
// cell registers the hook before it has a function and sends the search
// directories through a MessagePort once assigned; the hook waits for them
// only when it is asked to resolve a bare specifier the default resolution
// cannot find.
const ESM_RESOLVE_HOOK = `
let parents = [];
let ready = null;
export function initialize(data) {
  if (data.port) {
    ready = new Promise((resolve) => {
      data.port.once('message', (message) => {
        parents = message.parents;
        data.port.close();
        resolve();
      });
    });
  } else {
    parents = data.parents;
  }
}
function isBare(s) {
  return !(s.startsWith('.') || s.startsWith('/') || s.startsWith('#') || /^[a-zA-Z][a-zA-Z0-9+.-]*:/.test(s));
}
export async function resolve(specifier, context, next) {
  try {
    return await next(specifier, context);
  } catch (err) {
    if (err && err.code === 'ERR_MODULE_NOT_FOUND' && isBare(specifier)) {
      if (ready) await ready;
      for (const parentURL of parents) {
        try { return await next(specifier, { ...context, parentURL }); } catch (_e) {}
      }
    }
    throw err;
  }
}
`;

function nodePathParents(nodePath) {
  return nodePath
    .split(path.delimiter)
    .filter((d) => d && path.isAbsolute(d) && path.basename(d) === 'node_modules' && fs.existsSync(d))
    .map((d) => pathToFileURL(path.join(path.dirname(d), '__strato_node_path__.mjs')).href);
}

// Set by a stem cell that registered the hook ahead of its assignment.
let sendEsmParents = null;

function preregisterEsmNodePathResolver() {
  if (typeof Module.register !== 'function') return;
  const { port1, port2 } = new MessageChannel();
  Module.register('data:text/javascript,' + encodeURIComponent(ESM_RESOLVE_HOOK), import.meta.url, {
    data: { port: port2 },
    transferList: [port2],
  });
  sendEsmParents = (parents) => {
    port1.postMessage({ parents });
    port1.close();
  };
}

function registerEsmNodePathResolver(nodePath) {
  const parents = nodePathParents(nodePath);
  if (sendEsmParents) {
    sendEsmParents(parents);
    return;
  }
  if (typeof Module.register !== 'function' || parents.length === 0) return;
  Module.register('data:text/javascript,' + encodeURIComponent(ESM_RESOLVE_HOOK), import.meta.url, {
    data: { parents },
  });
}

// ---------------------------------------------------------------------------
// Handler loading (same search order and errors as the AWS runtime)
// ---------------------------------------------------------------------------

function hasPackageJsonTypeModule(folder) {
  for (;;) {
    if (folder.endsWith('/node_modules')) return false;
    const pj = path.join(folder, 'package.json');
    if (fs.existsSync(pj)) {
      try {
        const pkg = JSON.parse(fs.readFileSync(pj, 'utf8'));
        if (pkg) return pkg.type === 'module';
      } catch (e) {
        console.warn(`${pj} cannot be read, it will be ignored for ES module detection purposes.`, e);
        return false;
      }
    }
    if (folder === '/' || path.dirname(folder) === folder) return false;
    folder = path.dirname(folder);
  }
}

function tryRequireFile(file) {
  return fs.existsSync(file) ? require(file) : undefined;
}

async function tryImportFile(file) {
  return fs.existsSync(file) ? await import(pathToFileURL(file).href) : undefined;
}

async function tryLoad(appRoot, moduleRoot, moduleName) {
  const base = path.resolve(appRoot, moduleRoot, moduleName);
  const extensionless = tryRequireFile(base);
  if (extensionless) return extensionless;
  const pjModule = hasPackageJsonTypeModule(path.dirname(base));
  if (!pjModule) {
    const loaded = tryRequireFile(base + '.js');
    if (loaded) return loaded;
  }
  const loaded =
    (pjModule && (await tryImportFile(base + '.js'))) ||
    (await tryImportFile(base + '.mjs')) ||
    tryRequireFile(base + '.cjs');
  if (loaded) return loaded;
  // Fall back to node-style resolution (directories, node_modules, NODE_PATH).
  const resolved = require.resolve(moduleName, { paths: [appRoot, moduleRoot] });
  return require(resolved);
}

async function loadHandler(appRoot, fullHandlerString) {
  if (typeof fullHandlerString !== 'string' || fullHandlerString === '') {
    throw new MalformedHandlerName('Bad handler');
  }
  if (fullHandlerString.includes('..')) {
    throw new MalformedHandlerName(
      `'${fullHandlerString}' is not a valid handler name. Use absolute paths when specifying root directories in handler names.`,
    );
  }
  const handlerString = path.basename(fullHandlerString);
  const moduleRoot = fullHandlerString.substring(0, fullHandlerString.indexOf(handlerString));
  const match = handlerString.match(/^([^.]*)\.(.*)$/);
  if (!match) throw new MalformedHandlerName('Bad handler');
  const [, moduleName, handlerPath] = match;

  let userApp;
  try {
    userApp = await tryLoad(appRoot, moduleRoot, moduleName);
  } catch (e) {
    if (e instanceof SyntaxError) throw new UserCodeSyntaxError(e);
    if (e && e.code === 'MODULE_NOT_FOUND') throw new ImportModuleError(e);
    throw e;
  }
  const fn = handlerPath.split('.').reduce((obj, key) => obj && obj[key], userApp);
  if (!fn) throw new HandlerNotFound(`${fullHandlerString} is undefined or not exported`);
  if (typeof fn !== 'function') throw new HandlerNotFound(`${fullHandlerString} is not a function`);
  refuseCallbackHandlerFromNode24(fn);
  return fn;
}

// AWS removed callback-style handlers (three declared parameters) from
// nodejs24.x on: such a function fails its init with this error and text.
function refuseCallbackHandlerFromNode24(fn) {
  const match = /^AWS_Lambda_nodejs(\d+)\.x$/.exec(process.env.AWS_EXECUTION_ENV || '');
  if (!match || Number(match[1]) < 24) return;
  if (fn.length >= 3 && fn[HANDLER_STREAMING] !== 'response') {
    throw new CallbackHandlerDeprecated(
      'ERROR: AWS Lambda has removed support for callback-based function handlers starting with Node.js 24. You need to modify this function to use a supported handler signature to use Node.js 24 or later. For more information see https://docs.aws.amazon.com/lambda/latest/dg/nodejs-handler.html.',
    );
  }
}

function isAsyncFunction(fn) {
  try {
    return fn.constructor && fn.constructor.name === 'AsyncFunction';
  } catch (_e) {
    return false;
  }
}


// ---------------------------------------------------------------------------
// awslambda.streamifyResponse / HttpResponseStream. The response is POSTed as
// the handler writes it (Lambda-Runtime-Function-Response-Mode: streaming,
// chunked), so the caller gets each chunk while the function still runs; an
// error after the first byte ends the body with the error trailers. The
// request opens on the first write (or end), so setContentType works until
// then. Non-streaming handlers never touch any of this.
// ---------------------------------------------------------------------------

const HANDLER_STREAMING = Symbol.for('aws.lambda.runtime.handler.streaming');
const BEFORE_FIRST_WRITE = Symbol('strato.beforeFirstWrite');
const RESPONSE_MODE_HEADER = 'Lambda-Runtime-Function-Response-Mode';
const ERROR_BODY_TRAILER = 'Lambda-Runtime-Function-Error-Body';

class HttpResponseStream {
  static from(underlyingStream, prelude) {
    underlyingStream.setContentType('application/vnd.awslambda.http-integration-response');
    const metadata = JSON.stringify(prelude);
    underlyingStream[BEFORE_FIRST_WRITE] = (write) => {
      write(Buffer.from(metadata));
      write(Buffer.alloc(8));
    };
    return underlyingStream;
  }
}

function installAwsLambdaGlobal() {
  const flag = process.env.AWS_LAMBDA_NODEJS_NO_GLOBAL_AWSLAMBDA;
  if (flag === '1' || flag === 'true') return;
  globalThis.awslambda = {
    streamifyResponse: (handler, _options) => {
      handler[HANDLER_STREAMING] = 'response';
      return handler;
    },
    HttpResponseStream,
  };
}

function createResponseStream(id) {
  const urlPath = `${API_PREFIX}/invocation/${encodeURIComponent(id)}/response`;
  let contentType = 'application/octet-stream';
  let req = null;
  // The platform answered before the body ended (a response over the size
  // limit): the rest is discarded so the handler can still finish.
  let answered = false;
  let responded = null;

  const open = () => {
    if (req) return;
    req = http.request({
      hostname: client.hostname,
      port: client.port,
      path: urlPath,
      method: 'POST',
      agent: client.agent,
      headers: {
        'Content-Type': contentType,
        [RESPONSE_MODE_HEADER]: 'streaming',
        'Transfer-Encoding': 'chunked',
        Trailer: `${ERROR_TYPE_HEADER}, ${ERROR_BODY_TRAILER}`,
      },
    });
    req.on('socket', (s) => s.setNoDelay(true));
    responded = new Promise((resolve, reject) => {
      req.on('response', (res) => {
        answered = true;
        const chunks = [];
        res.on('data', (c) => chunks.push(c));
        res.on('end', () => {
          if (res.statusCode >= 300) {
            const text = Buffer.concat(chunks).toString('utf8').slice(0, 512);
            process.stderr.write(`strato runtime: POST ${urlPath} returned ${res.statusCode}: ${text}\n`);
          }
          resolve();
        });
      });
      req.on('error', (e) => {
        if (answered) resolve();
        else reject(new RuntimeApiError(`POST ${urlPath}: ${e.message}`));
      });
    });
    if (stream[BEFORE_FIRST_WRITE]) stream[BEFORE_FIRST_WRITE]((c) => req.write(c));
  };

  const stream = new Writable({
    write(chunk, encoding, cb) {
      open();
      if (answered || req.write(chunk, encoding)) cb();
      else req.once('drain', () => cb());
    },
    final(cb) {
      open();
      if (!answered) req.end();
      cb();
    },
  });
  stream.setContentType = (type) => {
    if (req) throw new Error('Cannot set content-type, too late.');
    contentType = type;
  };
  return {
    stream,
    started: () => req !== null,
    // Resolves once the platform has the whole response.
    done: () => responded,
    // Ends a started response with the error, as trailers.
    fail: (err) => {
      if (!answered && !req.writableEnded) {
        const response = toRapidResponse(err);
        req.addTrailers({
          [ERROR_TYPE_HEADER]: String(response.errorType),
          [ERROR_BODY_TRAILER]: Buffer.from(JSON.stringify(response)).toString('base64'),
        });
        req.end();
      }
      return responded;
    },
  };
}

async function runStreamingHandler(event, context, id, postError, send) {
  const rs = createResponseStream(id);
  try {
    const result = handlerFn(event, rs.stream, context);
    if (!(result && typeof result.then === 'function')) {
      throw new Error('Streaming does not support non-async handlers.');
    }
    if ((await result) !== undefined) console.warn('Streaming handlers ignore return values.');
    if (rs.stream.writableEnded && !rs.stream.writableFinished) {
      await new Promise((resolve, reject) => {
        rs.stream.once('finish', resolve);
        rs.stream.once('error', reject);
      });
    }
    if (!rs.stream.writableFinished) throw new Error('Response stream is not finished.');
  } catch (err) {
    if (!rs.started()) {
      postError(err);
      return;
    }
    structuredLogError('Invoke Error', err);
    send(rs.fail(err));
    return;
  }
  send(rs.done());
}

// ---------------------------------------------------------------------------
// Invocation loop
// ---------------------------------------------------------------------------

const BEFORE_EXIT = Symbol.for('aws.lambda.beforeExit');
const NO_OP = () => {};
const beforeExit = {
  invoke: () => {
    const listener = globalThis[BEFORE_EXIT];
    globalThis[BEFORE_EXIT] = NO_OP;
    listener();
  },
  reset: () => (globalThis[BEFORE_EXIT] = NO_OP),
  set: (fn) => (globalThis[BEFORE_EXIT] = fn),
};

let client;
let config;
let handlerFn;
let handlerIsAsync = false;

const errorCallbacks = {
  uncaughtException: (error) => {
    client.postInitError(error).then(() => process.exit(129), () => process.exit(129));
  },
  unhandledRejection: (error) => {
    client.postInitError(error).then(() => process.exit(128), () => process.exit(128));
  },
};

function setInvokeErrorCallbacks(id) {
  errorCallbacks.uncaughtException = (error) => {
    client.postInvocationError(error, id).then(() => process.exit(129), () => process.exit(129));
  };
  errorCallbacks.unhandledRejection = (error) => {
    client.postInvocationError(error, id).then(() => process.exit(128), () => process.exit(128));
  };
}

// Runs the next invocation; `next` is its event when the last response
// already brought it (postResponseThenNext), else handleOnce asks for it.
function scheduleIteration(next) {
  setImmediate(() => {
    handleOnce(next).catch((err) => {
      if (err instanceof RuntimeApiError) return fatalApi(err);
      console.log(`Unexpected Top Level Error: ${err.toString()}`);
      errorCallbacks.uncaughtException(err);
    });
  });
}

// The callback, plus context.{done,succeed,fail,callbackWaitsForEmptyEventLoop}.
// Only the first completion call has an effect.
function buildCallbackContext(id) {
  let finished = false;
  let completed = false;
  let waitForEmptyEventLoop = true;

  const onApiFailure = (err) => (err instanceof RuntimeApiError ? fatalApi(err) : Promise.reject(err));
  // After an error or a streamed response: ask for the next event.
  const send = (promise) => promise.then(() => scheduleIteration(), onApiFailure);
  // A whole response: its exchange brings the next event.
  const respond = (body) => client.postResponseThenNext(body, id).then(scheduleIteration, onApiFailure);

  const postError = (err) => {
    structuredLogError('Invoke Error', err);
    send(client.postInvocationError(err, id));
  };

  const complete = (result) => {
    if (completed) {
      console.error(
        'Invocation has already been reported as done. Cannot call complete more than once per invocation.',
      );
      return;
    }
    completed = true;
    let body;
    try {
      body = serializeResponse(result);
    } catch (err) {
      postError(err);
      return;
    }
    respond(body);
  };

  const once = (fn) =>
    function (...args) {
      if (finished) return;
      finished = true;
      fn(...args);
    };

  const callback = once((err, result) => {
    beforeExit.reset();
    if (err !== undefined && err !== null) {
      postError(err);
    } else if (!waitForEmptyEventLoop) {
      complete(result);
    } else {
      beforeExit.set(() => setImmediate(() => complete(result)));
    }
  });

  const done = (err, result) => {
    beforeExit.reset();
    if (err !== undefined && err !== null) postError(err);
    else complete(result);
  };

  const context = {
    get callbackWaitsForEmptyEventLoop() {
      return waitForEmptyEventLoop;
    },
    set callbackWaitsForEmptyEventLoop(value) {
      waitForEmptyEventLoop = value;
    },
    succeed: once((result) => done(null, result)),
    fail: once((err) => (err === undefined || err === null ? done('handled') : done(err, null))),
    done: once(done),
  };

  const markCompleted = () => {
    completed = true;
    finished = true;
  };
  return { callback, context, markCompleted, postError, send, respond };
}

function parseJsonHeader(value, name) {
  if (value === undefined) return undefined;
  try {
    return JSON.parse(value);
  } catch (err) {
    throw new Error(`Cannot parse ${name} as json: ${err.toString()}`);
  }
}

async function handleOnce(next) {
  const { body, headers } = next || (await client.nextInvocation());
  const id = headers['lambda-runtime-aws-request-id'];
  if (!id) throw new RuntimeApiError('next invocation without Lambda-Runtime-Aws-Request-Id');
  globalThis[REQUEST_ID] = id;

  const { callback, context, markCompleted, postError, send, respond } = buildCallbackContext(id);
  try {
    setInvokeErrorCallbacks(id);
    beforeExit.set(() => {
      // The event loop drained without the handler completing.
      markCompleted();
      if (handlerIsAsync) {
        const err = new NodeJsExit(NODEJS_EXIT_MESSAGE);
        structuredLogError('Invoke Error', err);
        send(client.postInvocationError(err, id));
      } else {
        respond('null');
      }
    });

    const trace = headers['lambda-runtime-trace-id'];
    if (trace) process.env._X_AMZN_TRACE_ID = trace;
    else delete process.env._X_AMZN_TRACE_ID;
    const deadline = Number(headers['lambda-runtime-deadline-ms']);
    Object.assign(context, {
      functionVersion: config.functionVersion,
      functionName: config.functionName,
      memoryLimitInMB: config.memoryLimitInMB,
      logGroupName: config.logGroupName,
      logStreamName: config.logStreamName,
      clientContext: parseJsonHeader(headers['lambda-runtime-client-context'], 'ClientContext'),
      identity: parseJsonHeader(headers['lambda-runtime-cognito-identity'], 'CognitoIdentity'),
      invokedFunctionArn: headers['lambda-runtime-invoked-function-arn'],
      awsRequestId: id,
      tenantId: headers['lambda-runtime-aws-tenant-id'],
      getRemainingTimeInMillis: () => deadline - Date.now(),
    });

    if (handlerFn[HANDLER_STREAMING] === 'response') {
      beforeExit.set(() => {
        markCompleted();
        const err = new NodeJsExit(NODEJS_EXIT_MESSAGE);
        structuredLogError('Invoke Error', err);
        send(client.postInvocationError(err, id));
      });
      const event = JSON.parse(body);
      markCompleted(); // the callback API is not used by streaming handlers
      await runStreamingHandler(event, context, id, (err) => {
        beforeExit.reset();
        postError(err);
      }, (p) => {
        beforeExit.reset();
        send(p);
      });
      return;
    }
    const result = handlerFn(JSON.parse(body), context, callback);
    if (result && typeof result.then === 'function') {
      result.then(context.succeed, context.fail).catch(context.fail);
    }
  } catch (err) {
    callback(err);
  }
}

async function main() {
  patchConsole(process.env.AWS_LAMBDA_LOG_FORMAT, process.env.AWS_LAMBDA_LOG_LEVEL);
  try {
    client = new RapidClient(process.env.AWS_LAMBDA_RUNTIME_API);
  } catch (err) {
    fatalApi(err);
  }

  process.on('uncaughtException', (error) => {
    structuredLogError('Uncaught Exception', error);
    errorCallbacks.uncaughtException(error);
  });
  process.on('unhandledRejection', (reason, promise) => {
    const error = new UnhandledPromiseRejection(reason, promise);
    structuredLogError('Unhandled Promise Rejection', error);
    errorCallbacks.unhandledRejection(error);
  });
  beforeExit.reset();
  process.on('beforeExit', beforeExit.invoke);

  if (process.env.STRATO_STEM_CELL === '1') {
    preregisterEsmNodePathResolver();
    let assignment;
    try {
      assignment = await client.assignment();
    } catch (err) {
      fatalApi(err);
    }
    const env = (assignment && assignment.env) || {};
    delete process.env.STRATO_STEM_CELL;
    for (const [k, v] of Object.entries(env)) process.env[k] = String(v);
  }

  config = loadConfig();
  patchConsole(config.logFormat, config.logLevel);
  try {
    // Always enter anew: a stem cell's code was mounted over the directory
    // this process started in, which the old handle would still show.
    if (fs.existsSync(config.taskRoot)) process.chdir(config.taskRoot);
  } catch (_e) {
    /* keep the current directory */
  }
  setupModulePaths(config);
  installAwsLambdaGlobal();

  try {
    handlerFn = await loadHandler(config.taskRoot, config.handler);
  } catch (err) {
    // As AWS: logged as an uncaught exception, reported to /init/error, exit 129.
    structuredLogError('Uncaught Exception', err);
    try {
      await client.postInitError(err);
    } catch (e) {
      process.stderr.write(`strato runtime: failed to report init error: ${e.message}\n`);
    }
    process.exit(129);
  }
  handlerIsAsync = isAsyncFunction(handlerFn);
  scheduleIteration();
}

main();
