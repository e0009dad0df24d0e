package dev.repast.client;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.BufferedReader;
import java.io.File;
import java.io.IOException;
import java.io.InputStreamReader;
import java.io.OutputStream;
import java.io.OutputStreamWriter;
import java.io.Writer;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;
import org.junit.jupiter.api.extension.BeforeAllCallback;
import org.junit.jupiter.api.extension.ExtensionContext;

/**
 * A real redis-server and two `repast serve` processes (one with bearer auth) on free
 * 127.0.0.1 ports, shared by every test class of the run ({@code @ExtendWith(Servers.Extension.class)})
 * and stopped when the run ends. The repo's venv python (REPAST_PYTHON, else
 * {@code <repo>/.venv/bin/python}) writes clients/testdata/repo.py's feature repo, `repast
 * apply` registers it and the client itself materializes it.
 */
public final class Servers implements AutoCloseable {
  static final String AUTH_TOKEN = "client-test-token"; // clients/testdata/repo.py's AUTH_TOKEN
  static final ObjectMapper MAPPER = new ObjectMapper();

  private static Servers instance;

  final Path root;
  final Path python;
  final Path tmp;
  final Path repo;
  final Redis redis;
  final Process server;
  final Process authServer;
  final URI serverUri;
  final URI authServerUri;
  private Process oracle;
  private Writer oracleIn;
  private BufferedReader oracleOut;

  static synchronized Servers get() {
    if (instance == null) {
      try {
        instance = new Servers();
      } catch (Exception e) {
        throw new IllegalStateException("client tests: setup failed: " + e.getMessage(), e);
      }
      Runtime.getRuntime().addShutdownHook(new Thread(instance::close));
    }
    return instance;
  }

  private Servers() throws Exception {
    String rootProp = System.getenv().getOrDefault("REPAST_ROOT", System.getProperty("repast.root", "../.."));
    root = Path.of(rootProp).toAbsolutePath().normalize();
    String py = System.getenv("REPAST_PYTHON");
    python = py != null ? Path.of(py) : root.resolve(".venv/bin/python");
    if (!Files.exists(python)) {
      throw new IllegalStateException("no python at " + python + " (run `make build-dev`, or set REPAST_PYTHON)");
    }
    tmp = Files.createTempDirectory("repast-java-client-");
    repo = tmp.resolve("repo");
    redis = new Redis(tmp.resolve("redis"));
    redis.start();
    run(python.toString(), root.resolve("clients/testdata/repo.py").toString(), "write", repo.toString(), redis.address());
    run(cli(), "-c", repo.toString(), "apply");
    int port = freePort();
    serverUri = URI.create("http://127.0.0.1:" + port);
    server = serve("feature_store.yaml", port);
    int authPort = freePort();
    authServerUri = URI.create("http://127.0.0.1:" + authPort);
    authServer = serve("auth.yaml", authPort);
    materializeAll();
  }

  /** Starts the servers before the first test class that uses them. */
  public static final class Extension implements BeforeAllCallback {
    @Override
    public void beforeAll(ExtensionContext context) {
      Servers s = get();
      // Closed with the root context: once, when the whole run ends (the shutdown hook is the
      // fallback for a JVM that ends otherwise).
      context.getRoot().getStore(ExtensionContext.Namespace.GLOBAL).getOrComputeIfAbsent("repast-servers", k -> s);
    }
  }

  void materializeAll() {
    RepastClient.builder(serverUri)
        .timeout(Duration.ofMinutes(2))
        .build()
        .materialize(
            MaterializeRequest.of(
                Instant.parse("2020-01-01T00:00:00Z"), Instant.parse("2025-01-01T00:00:00Z"), "all_types", "wide"));
  }

  /** CPU time used so far by `repast serve` and redis-server together. */
  long serverCpuNanos() {
    long total = 0;
    for (ProcessHandle p : new ProcessHandle[] {server.toHandle(), redis.handle()}) {
      total += p.info().totalCpuDuration().map(java.time.Duration::toNanos).orElse(0L);
    }
    return total;
  }

  RepastClient.Builder client() {
    return RepastClient.builder(serverUri);
  }

  private String cli() {
    return python.getParent().resolve("repast").toString();
  }

  private void run(String... args) throws IOException, InterruptedException {
    Process p = new ProcessBuilder(args).redirectErrorStream(true).start();
    String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
    if (p.waitFor() != 0) {
      throw new IOException(String.join(" ", args) + " failed:\n" + out);
    }
  }

  /**
   * The command, run on REPAST_SERVER_CPUS (a taskset list) when it is set, so a benchmark can
   * keep the servers and the client on different CPUs.
   */
  static List<String> command(String... args) {
    List<String> out = new ArrayList<>();
    String cpus = System.getenv("REPAST_SERVER_CPUS");
    if (cpus != null && !cpus.isEmpty()) {
      out.addAll(List.of("taskset", "-c", cpus));
    }
    out.addAll(List.of(args));
    return out;
  }

  static int freePort() throws IOException {
    try (ServerSocket s = new ServerSocket()) {
      s.bind(new InetSocketAddress("127.0.0.1", 0));
      return s.getLocalPort();
    }
  }

  private Process serve(String yaml, int port) throws IOException, InterruptedException {
    File log = tmp.resolve("serve-" + yaml + ".log").toFile();
    Process p =
        new ProcessBuilder(
                command(
                    cli(), "-c", repo.toString(), "-f", repo.resolve(yaml).toString(), "serve",
                    "-h", "127.0.0.1", "-p", Integer.toString(port), "--no-access-log"))
            .redirectErrorStream(true)
            .redirectOutput(log)
            .start();
    HttpClient http = HttpClient.newHttpClient();
    long deadline = System.nanoTime() + Duration.ofSeconds(60).toNanos();
    while (System.nanoTime() < deadline) {
      if (!p.isAlive()) {
        throw new IOException("repast serve exited:\n" + Files.readString(log.toPath()));
      }
      try {
        http.send(
            HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + port + "/health")).build(),
            HttpResponse.BodyHandlers.discarding());
        return p;
      } catch (IOException e) {
        Thread.sleep(100);
      }
    }
    p.destroyForcibly();
    throw new IOException("repast serve did not answer in 60 s:\n" + Files.readString(log.toPath()));
  }

  /** clients/testdata/repo.py's `expect`: what the Python SDK returns for the request. */
  synchronized JsonNode sdkExpect(Map<String, Object> request) throws IOException {
    if (oracle == null) {
      oracle =
          new ProcessBuilder(python.toString(), root.resolve("clients/testdata/repo.py").toString(), "expect", repo.toString())
              .redirectError(tmp.resolve("oracle.log").toFile())
              .start();
      oracleIn = new OutputStreamWriter(oracle.getOutputStream(), StandardCharsets.UTF_8);
      oracleOut = new BufferedReader(new InputStreamReader(oracle.getInputStream(), StandardCharsets.UTF_8));
    }
    oracleIn.write(MAPPER.writeValueAsString(request) + "\n");
    oracleIn.flush();
    String line = oracleOut.readLine();
    if (line == null) {
      throw new IOException("repo.py expect died:\n" + Files.readString(tmp.resolve("oracle.log")));
    }
    return MAPPER.readTree(line);
  }

  private boolean closed;

  @Override
  public synchronized void close() {
    if (closed) {
      return;
    }
    closed = true;
    if (oracle != null) {
      oracle.destroy();
    }
    for (Process p : new Process[] {server, authServer}) {
      stopTree(p);
    }
    redis.stop();
    try (Stream<Path> files = Files.walk(tmp)) {
      files.sorted(Comparator.reverseOrder()).forEach(f -> f.toFile().delete());
    } catch (IOException e) {
      // A temp dir left behind is not a test failure.
    }
  }

  private static void stopTree(Process p) {
    List<ProcessHandle> children = new ArrayList<>(p.descendants().toList());
    p.destroy();
    try {
      if (!p.waitFor(20, java.util.concurrent.TimeUnit.SECONDS)) {
        p.destroyForcibly();
      }
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
    children.forEach(ProcessHandle::destroyForcibly);
  }

  /** redis-server without persistence; stop() and start() keep the port. */
  static final class Redis {
    final Path dir;
    final int port;
    private Process process;

    Redis(Path dir) throws IOException {
      this.dir = Files.createDirectories(dir);
      this.port = freePort();
    }

    String address() {
      return "127.0.0.1:" + port;
    }

    synchronized void start() throws IOException, InterruptedException {
      process =
          new ProcessBuilder(
                  command(
                      "redis-server", "--port", Integer.toString(port), "--bind", "127.0.0.1",
                      "--save", "", "--appendonly", "no", "--dir", dir.toString()))
              .redirectErrorStream(true)
              .redirectOutput(ProcessBuilder.Redirect.appendTo(dir.resolve("redis.log").toFile()))
              .start();
      long deadline = System.nanoTime() + Duration.ofSeconds(20).toNanos();
      while (System.nanoTime() < deadline) {
        try (Socket s = new Socket("127.0.0.1", port)) {
          OutputStream out = s.getOutputStream();
          out.write("PING\r\n".getBytes(StandardCharsets.US_ASCII));
          out.flush();
          String line = new BufferedReader(new InputStreamReader(s.getInputStream(), StandardCharsets.US_ASCII)).readLine();
          if (line != null && line.startsWith("+PONG")) {
            return;
          }
        } catch (IOException e) {
          // Not listening yet.
        }
        Thread.sleep(50);
      }
      throw new IOException("redis-server on " + address() + " did not answer PING; see " + dir + "/redis.log");
    }

    synchronized ProcessHandle handle() {
      return process.toHandle();
    }

    synchronized void stop() {
      if (process != null) {
        process.destroyForcibly();
        try {
          process.waitFor();
        } catch (InterruptedException e) {
          Thread.currentThread().interrupt();
        }
        process = null;
      }
    }
  }
}
