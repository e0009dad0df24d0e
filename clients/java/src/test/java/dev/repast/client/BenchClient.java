package dev.repast.client;

import java.lang.management.ManagementFactory;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * A plain timed loop (run by load-tests/bench_clients.sh, never by the tests): 1 entity x 50
 * features against the real server of {@link Servers}, one caller and then 32 concurrent
 * callers sharing one client. client-cpu-us/call is this JVM's CPU time (JIT and GC threads
 * included) per call, i.e. the client's own cost on top of the server, which runs in another
 * process. Each round prints one line; the script takes the medians.
 *
 * <p>Arguments: rounds, calls per round (default 5 and 3000).
 */
public final class BenchClient {
  private BenchClient() {}

  static OnlineRequest wide(long id) {
    List<String> features = new ArrayList<>();
    for (int i = 0; i < 50; i++) {
      features.add(String.format("wide:w%02d", i));
    }
    return OnlineRequest.builder().entities(Column.int64s("driver_id", id)).features(features).build();
  }

  static long cpuNanos() {
    return ((com.sun.management.OperatingSystemMXBean) ManagementFactory.getOperatingSystemMXBean())
        .getProcessCpuTime();
  }

  /** {@code calls} calls spread over 32 threads sharing one client. */
  static void runCallers(ExecutorService pool, RepastClient client, List<OnlineRequest> requests, int calls)
      throws Exception {
    AtomicInteger next = new AtomicInteger();
    List<Future<?>> futures = new ArrayList<>();
    for (int t = 0; t < 32; t++) {
      futures.add(
          pool.submit(
              () -> {
                for (int i = next.getAndIncrement(); i < calls; i = next.getAndIncrement()) {
                  client.getOnlineFeatures(requests.get(i % 100));
                }
                return null;
              }));
    }
    for (Future<?> f : futures) {
      f.get();
    }
  }

  public static void main(String[] args) throws Exception {
    int rounds = args.length > 0 ? Integer.parseInt(args[0]) : 5;
    int calls = args.length > 1 ? Integer.parseInt(args[1]) : 3000;
    Servers servers = Servers.get();
    try {
      RepastClient client = servers.client().build();
      OnlineRequest one = wide(1001);
      // Warm-up: the JIT compiles the client's hot path before anything is timed.
      for (int i = 0; i < 20000; i++) {
        client.getOnlineFeatures(one).column("w00").int64s();
      }
      List<OnlineRequest> requests = new ArrayList<>();
      for (int i = 0; i < 100; i++) {
        requests.add(wide(1001 + i));
      }
      // The floor: java.net.http alone, same body and server, the answer read as bytes and
      // not decoded. The client's own cost is what it adds to this.
      StringBuilder body = new StringBuilder("{\"entities\":{\"driver_id\":[1001]},\"features\":[");
      for (int i = 0; i < 50; i++) {
        body.append(i == 0 ? "" : ",").append(String.format("\"wide:w%02d\"", i));
      }
      byte[] raw = body.append("]}").toString().getBytes(java.nio.charset.StandardCharsets.UTF_8);
      java.net.http.HttpClient http =
          java.net.http.HttpClient.newBuilder().version(java.net.http.HttpClient.Version.HTTP_1_1).build();
      java.net.http.HttpRequest floorRequest =
          java.net.http.HttpRequest.newBuilder(servers.serverUri.resolve("/get-online-features"))
              .header("Content-Type", "application/json")
              .POST(java.net.http.HttpRequest.BodyPublishers.ofByteArray(raw))
              .build();
      for (int i = 0; i < 20000; i++) {
        http.send(floorRequest, java.net.http.HttpResponse.BodyHandlers.ofByteArray());
      }
      ExecutorService pool = Executors.newFixedThreadPool(32);
      // The 32-caller path warms up too: its 32 connections, and the JIT's code for the
      // concurrent paths (without this, the first rounds measured half the later throughput).
      runCallers(pool, client, requests, 30000);
      for (int round = 0; round < rounds; round++) {
        long f0 = cpuNanos();
        long ft0 = System.nanoTime();
        for (int i = 0; i < calls; i++) {
          http.send(floorRequest, java.net.http.HttpResponse.BodyHandlers.ofByteArray());
        }
        System.out.printf(
            "floor round=%d calls=%d us/call=%.1f client-cpu-us/call=%.1f%n",
            round, calls, (System.nanoTime() - ft0) / 1e3 / calls, (cpuNanos() - f0) / 1e3 / calls);
        long cpu0 = cpuNanos();
        long t0 = System.nanoTime();
        for (int i = 0; i < calls; i++) {
          client.getOnlineFeatures(one).column("w00").int64s();
        }
        long wall = System.nanoTime() - t0;
        long cpu = cpuNanos() - cpu0;
        System.out.printf(
            "serial round=%d calls=%d us/call=%.1f client-cpu-us/call=%.1f calls/s=%.0f%n",
            round, calls, wall / 1e3 / calls, cpu / 1e3 / calls, calls / (wall / 1e9));

        int parallelCalls = calls * 4;
        long server0 = servers.serverCpuNanos();
        cpu0 = cpuNanos();
        t0 = System.nanoTime();
        runCallers(pool, client, requests, parallelCalls);
        wall = System.nanoTime() - t0;
        cpu = cpuNanos() - cpu0;
        // The server and Redis share one CPU: server-cpus near 1.0 means the server is the limit.
        System.out.printf(
            "callers32 round=%d calls=%d client-cpu-us/call=%.1f calls/s=%.0f server-cpus=%.2f%n",
            round, parallelCalls, cpu / 1e3 / parallelCalls, parallelCalls / (wall / 1e9),
            (servers.serverCpuNanos() - server0) / (double) wall);
      }
      pool.shutdownNow();
    } finally {
      servers.close();
    }
  }
}
