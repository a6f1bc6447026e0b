// Strato's stem-cell launcher for the Java runtimes.
//
// The JVM starts ahead of need with AWS's runtime interface client (RIC) on
// its class path. This class loads the RIC's classes (without initializing
// them, so nothing reads the environment yet), then asks the Runtime API
// for its assignment: GET /2018-06-01/runtime/strato/assignment blocks until
// a cold start adopts this sandbox and answers {"env": {...}} with the
// function's environment. The environment is installed into the JVM's view
// of it (System.getenv), and the RIC's main runs with the handler, exactly
// as in a JVM started for the function.
//
// Needs --add-opens java.base/java.lang=ALL-UNNAMED and
// --add-opens java.base/java.util=ALL-UNNAMED (for System.getenv's map).

import java.io.ByteArrayOutputStream;
import java.io.InputStream;
import java.io.OutputStream;
import java.lang.reflect.Field;
import java.lang.reflect.Method;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
import java.util.HashMap;
import java.util.Map;

public final class StratoStem {
    private static final String RIC_MAIN = "com.amazonaws.services.lambda.runtime.api.client.AWSLambda";

    public static void main(String[] args) throws Throwable {
        ClassLoader loader = StratoStem.class.getClassLoader();
        Class<?> ric = Class.forName(RIC_MAIN, false, loader);
        Method main = ric.getMethod("main", String[].class);
        preload(loader);

        String api = System.getenv("AWS_LAMBDA_RUNTIME_API");
        if (api == null) {
            fail("AWS_LAMBDA_RUNTIME_API is not set");
        }
        String body = get(api, "/2018-06-01/runtime/strato/assignment");
        Map<String, String> env = new Json(body).assignmentEnv();
        env.remove("STRATO_STEM_CELL");
        installEnvironment(env);
        String handler = env.get("_HANDLER");
        if (handler == null) {
            fail("the assignment names no handler");
        }
        main.invoke(null, (Object) new String[] {handler});
    }

    /**
     * Loads (without initializing) every class of the jars on the class path
     * under /var/runtime: parsing and verifying them is most of what the RIC
     * costs at start, and none of it depends on the function.
     */
    private static void preload(ClassLoader loader) {
        String classPath = System.getProperty("java.class.path", "");
        for (String entry : classPath.split(java.io.File.pathSeparator)) {
            java.io.File dir = new java.io.File(entry.endsWith("*") ? entry.substring(0, entry.length() - 1) : entry);
            java.io.File[] jars = dir.isDirectory() ? dir.listFiles((d, n) -> n.endsWith(".jar")) : null;
            if (jars == null) {
                continue;
            }
            for (java.io.File jar : jars) {
                try (java.util.jar.JarFile file = new java.util.jar.JarFile(jar)) {
                    java.util.Enumeration<java.util.jar.JarEntry> entries = file.entries();
                    while (entries.hasMoreElements()) {
                        String name = entries.nextElement().getName();
                        if (!name.endsWith(".class") || name.startsWith("META-INF/") || name.contains("module-info")) {
                            continue;
                        }
                        try {
                            Class.forName(name.substring(0, name.length() - 6).replace('/', '.'), false, loader);
                        } catch (Throwable optionalDependencyMissing) {
                            // A class whose optional dependencies are absent: loaded when used, if ever.
                        }
                    }
                } catch (java.io.IOException unreadable) {
                    // The RIC reports a broken jar itself when it needs it.
                }
            }
        }
    }

    private static void fail(String message) {
        System.err.println("strato stem cell: " + message);
        System.exit(127);
    }

    /** Replaces what System.getenv() returns with the assigned environment. */
    @SuppressWarnings("unchecked")
    private static void installEnvironment(Map<String, String> assigned) throws Exception {
        Class<?> pe = Class.forName("java.lang.ProcessEnvironment");
        Field unmodifiableField = pe.getDeclaredField("theUnmodifiableEnvironment");
        unmodifiableField.setAccessible(true);
        Object unmodifiable = unmodifiableField.get(null);
        Field inner = unmodifiable.getClass().getDeclaredField("m");
        inner.setAccessible(true);
        Map<String, String> env = (Map<String, String>) inner.get(unmodifiable);
        env.remove("STRATO_STEM_CELL");
        env.putAll(assigned);
    }

    /** A blocking HTTP/1.1 GET; returns the body of a 200 answer. */
    private static String get(String authority, String path) throws Exception {
        int colon = authority.lastIndexOf(':');
        String host = authority.substring(0, colon);
        int port = Integer.parseInt(authority.substring(colon + 1));
        try (Socket socket = new Socket(host, port)) {
            socket.setTcpNoDelay(true);
            OutputStream out = socket.getOutputStream();
            out.write(("GET " + path + " HTTP/1.1\r\nHost: " + authority + "\r\nConnection: close\r\n\r\n")
                    .getBytes(StandardCharsets.US_ASCII));
            out.flush();
            InputStream in = socket.getInputStream();
            ByteArrayOutputStream all = new ByteArrayOutputStream();
            byte[] buffer = new byte[8192];
            for (int n; (n = in.read(buffer)) > 0; ) {
                all.write(buffer, 0, n);
            }
            byte[] response = all.toByteArray();
            int split = indexOf(response, "\r\n\r\n".getBytes(StandardCharsets.US_ASCII), 0);
            String head = new String(response, 0, Math.max(split, 0), StandardCharsets.US_ASCII);
            if (split < 0 || !head.startsWith("HTTP/1.1 200")) {
                int eol = head.indexOf('\r');
                fail("the Runtime API refused the assignment: " + (eol < 0 ? head : head.substring(0, eol)));
            }
            byte[] rest = java.util.Arrays.copyOfRange(response, split + 4, response.length);
            byte[] body = head.toLowerCase().contains("transfer-encoding: chunked") ? dechunk(rest) : rest;
            return new String(body, StandardCharsets.UTF_8);
        }
    }

    private static int indexOf(byte[] haystack, byte[] needle, int from) {
        outer:
        for (int i = from; i + needle.length <= haystack.length; i++) {
            for (int j = 0; j < needle.length; j++) {
                if (haystack[i + j] != needle[j]) {
                    continue outer;
                }
            }
            return i;
        }
        return -1;
    }

    private static byte[] dechunk(byte[] body) {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        byte[] crlf = "\r\n".getBytes(StandardCharsets.US_ASCII);
        int at = 0;
        while (true) {
            int eol = indexOf(body, crlf, at);
            if (eol < 0) {
                throw new IllegalArgumentException("malformed chunked body");
            }
            String size = new String(body, at, eol - at, StandardCharsets.US_ASCII);
            int semicolon = size.indexOf(';');
            int n = Integer.parseInt((semicolon < 0 ? size : size.substring(0, semicolon)).trim(), 16);
            if (n == 0) {
                return out.toByteArray();
            }
            out.write(body, eol + 2, n);
            at = eol + 2 + n + 2;
        }
    }

    /** Just enough JSON for {"env": {"K": "V", ...}, ...}: objects, strings, and skipping the rest. */
    private static final class Json {
        private final String s;
        private int i;

        Json(String s) {
            this.s = s;
        }

        Map<String, String> assignmentEnv() {
            Map<String, String> env = new HashMap<>();
            expect('{');
            if (peek() == '}') {
                return env;
            }
            while (true) {
                String key = string();
                expect(':');
                if (key.equals("env")) {
                    expect('{');
                    if (peek() != '}') {
                        while (true) {
                            String k = string();
                            expect(':');
                            env.put(k, string());
                            if (peek() == ',') {
                                i++;
                                continue;
                            }
                            break;
                        }
                    }
                    expect('}');
                } else {
                    skipValue();
                }
                if (peek() == ',') {
                    i++;
                    continue;
                }
                expect('}');
                return env;
            }
        }

        private char peek() {
            while (i < s.length() && Character.isWhitespace(s.charAt(i))) {
                i++;
            }
            if (i >= s.length()) {
                throw new IllegalArgumentException("truncated assignment");
            }
            return s.charAt(i);
        }

        private void expect(char c) {
            if (peek() != c) {
                throw new IllegalArgumentException("expected '" + c + "' at " + i);
            }
            i++;
        }

        private String string() {
            expect('"');
            StringBuilder out = new StringBuilder();
            while (true) {
                char c = s.charAt(i++);
                if (c == '"') {
                    return out.toString();
                }
                if (c != '\\') {
                    out.append(c);
                    continue;
                }
                char e = s.charAt(i++);
                switch (e) {
                    case 'n': out.append('\n'); break;
                    case 't': out.append('\t'); break;
                    case 'r': out.append('\r'); break;
                    case 'b': out.append('\b'); break;
                    case 'f': out.append('\f'); break;
                    case 'u':
                        out.append((char) Integer.parseInt(s.substring(i, i + 4), 16));
                        i += 4;
                        break;
                    default: out.append(e);
                }
            }
        }

        private void skipValue() {
            char c = peek();
            if (c == '"') {
                string();
            } else if (c == '{' || c == '[') {
                int depth = 0;
                boolean inString = false;
                for (; i < s.length(); i++) {
                    char d = s.charAt(i);
                    if (inString) {
                        if (d == '\\') {
                            i++;
                        } else if (d == '"') {
                            inString = false;
                        }
                    } else if (d == '"') {
                        inString = true;
                    } else if (d == '{' || d == '[') {
                        depth++;
                    } else if (d == '}' || d == ']') {
                        if (--depth == 0) {
                            i++;
                            return;
                        }
                    }
                }
            } else {
                while (i < s.length() && ",}]".indexOf(s.charAt(i)) < 0) {
                    i++;
                }
            }
        }
    }
}
