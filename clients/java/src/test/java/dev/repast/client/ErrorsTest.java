package dev.repast.client;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.time.Duration;
import java.time.Instant;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.api.function.Executable;

@ExtendWith(Servers.Extension.class)
class ErrorsTest {
  private final Servers servers = Servers.get();
  private final List<RetryEvent> retries = new CopyOnWriteArrayList<>();
  private final RepastClient client =
      servers
          .client()
          .retryPolicy(new RetryPolicy(5, Duration.ofMillis(1), Duration.ofMillis(1)))
          .onRetry(retries::add)
          .build();

  static RepastApiException assertApiError(int status, String error, String detail, Executable call) {
    RepastApiException e = assertThrows(RepastApiException.class, call);
    assertEquals(status, e.status(), e.getMessage());
    assertEquals(error, e.error(), e.getMessage());
    assertTrue(e.detail().contains(detail), e.detail());
    assertFalse(e.isTemporary());
    return e;
  }

  /** The server's repast_errors counter for one endpoint and kind: how many attempts reached it. */
  double errorCount(String endpoint, String kind) throws Exception {
    String body =
        HttpClient.newHttpClient()
            .send(HttpRequest.newBuilder(servers.serverUri.resolve("/metrics")).build(), HttpResponse.BodyHandlers.ofString())
            .body();
    Matcher m = Pattern.compile("(?m)^repast_errors_total\\{([^}]*)\\} (\\S+)$").matcher(body);
    double total = 0;
    while (m.find()) {
      if (m.group(1).contains("endpoint=\"" + endpoint + "\"") && m.group(1).contains("error=\"" + kind + "\"")) {
        total += Double.parseDouble(m.group(2));
      }
    }
    return total;
  }

  /** Bad requests fail with the server's status, kind and message, and are never retried. */
  @Test
  void badRequestsAreTypedAndNotRetried() throws Exception {
    Column ids = Column.int64s("driver_id", 1001L);
    double before = errorCount("/get-online-features", "FeatureNotFoundError");
    RepastApiException e =
        assertApiError(
            404,
            "FeatureNotFoundError",
            "feature view 'all_types' has no feature 'nope'",
            () -> client.getOnlineFeatures(OnlineRequest.builder().entities(ids).features("all_types:nope").build()));
    assertTrue(e.getMessage().startsWith("repast: POST /get-online-features: 404 FeatureNotFoundError: "), e.getMessage());
    assertEquals(before + 1, errorCount("/get-online-features", "FeatureNotFoundError"), "attempts the server saw");

    assertApiError(
        404,
        "FeatureServiceNotFoundError",
        "feature service 'nope' does not exist",
        () -> client.getOnlineFeatures(OnlineRequest.builder().entities(ids).featureService("nope").build()));
    assertApiError(
        400,
        "BadRequest",
        "No features specified for retrieval",
        () -> client.getOnlineFeatures(OnlineRequest.builder().entities(ids).build()));
    assertApiError(422, "PushSourceNotFoundError", "push source 'nope' does not exist", () -> client.push("nope", ids));
    List<Column> row = WriteTest.pushRow(4003, Instant.now(), 1, false);
    assertApiError(
        400,
        "MissingColumnError",
        "for feature view 'pushed' has no column 'driver_id'",
        () -> client.push("all_types_push", row.subList(1, row.size()).toArray(Column[]::new)));
    assertApiError(
        400,
        "BadRequest",
        "event_timestamp",
        () ->
            client.writeToOnlineStore(
                "user_stats",
                Column.strings("user_id", "x"),
                Column.strings("event_timestamp", "yesterday"),
                Column.float64s("score", 1.0),
                Column.int64s("visits", 1L)));

    // Refused before sending: columns of different lengths, bytes the JSON push cannot carry.
    IllegalArgumentException bad =
        assertThrows(
            IllegalArgumentException.class,
            () ->
                client.getOnlineFeatures(
                    OnlineRequest.builder()
                        .entities(Column.int64s("driver_id", 1L, 2L), Column.strings("user_id", "a"))
                        .features("all_types:i32")
                        .build()));
    assertEquals("entities column 'user_id' has 1 rows, column 'driver_id' has 2", bad.getMessage());
    bad =
        assertThrows(
            IllegalArgumentException.class,
            () -> client.push("all_types_push", Column.bytes("byt", new byte[] {(byte) 0xff})));
    assertTrue(bad.getMessage().contains("column 'byt' row 0: bytes value [-1] is not valid UTF-8"), bad.getMessage());
    assertEquals(List.of(), retries, "4xx answers are never retried");
  }

  @Test
  void bearerToken() {
    OnlineRequest req = OnlineRequest.builder().entities(Column.int64s("driver_id", 1001L)).features("all_types:i64").build();
    for (String token : new String[] {null, "wrong"}) {
      RepastClient c = RepastClient.builder(servers.authServerUri).token(token).build();
      assertApiError(
          401,
          "Unauthorized",
          token == null ? "missing `Authorization: Bearer <token>` header" : "invalid bearer token",
          () -> c.getOnlineFeatures(req));
      assertTrue(c.health().isOk(), "/health needs no token");
    }
    RepastClient c = RepastClient.builder(servers.authServerUri).token(Servers.AUTH_TOKEN).build();
    assertEquals((1L << 53) + 1, c.getOnlineFeatures(req).column("i64").int64s().get(0));
  }

  /** No server there: every attempt is made, then a RepastConnectionException. */
  @Test
  void connectionErrorsAreRetried() throws Exception {
    URI closed = URI.create("http://127.0.0.1:" + Servers.freePort());
    RepastClient c =
        RepastClient.builder(closed)
            .retryPolicy(new RetryPolicy(3, Duration.ofMillis(1), Duration.ofMillis(5)))
            .onRetry(retries::add)
            .build();
    RepastConnectionException e =
        assertThrows(RepastConnectionException.class, () -> c.push("s", Column.int64s("a", 1L)));
    assertEquals(4, e.attempts());
    assertTrue(e.getMessage().startsWith("repast: POST /push: no answer after 4 attempt(s)"), e.getMessage());
    assertEquals(3, retries.size());
    assertEquals(3, retries.get(2).attempt());
    assertTrue(retries.get(0).backoff().compareTo(Duration.ofMillis(1)) <= 0);
  }

  @Test
  void timeoutAndInterrupt() throws Exception {
    URI closed = URI.create("http://127.0.0.1:" + Servers.freePort());
    RepastClient c =
        RepastClient.builder(closed)
            .retryPolicy(new RetryPolicy(100, Duration.ofSeconds(1), Duration.ofSeconds(1)))
            .timeout(Duration.ofMillis(300))
            .build();
    OnlineRequest req = OnlineRequest.builder().entities(Column.int64s("driver_id", 1L)).features("a:b").build();
    long start = System.nanoTime();
    RepastException e = assertThrows(RepastException.class, () -> c.getOnlineFeatures(req));
    assertTrue(e.getMessage().contains("timed out after PT0.3S"), e.getMessage());

    RepastClient slow =
        RepastClient.builder(closed).retryPolicy(new RetryPolicy(100, Duration.ofSeconds(1), Duration.ofSeconds(1))).build();
    Thread caller = Thread.currentThread();
    Thread interrupter = new Thread(() -> {
      try {
        Thread.sleep(100);
      } catch (InterruptedException ignored) {
        return;
      }
      caller.interrupt();
    });
    interrupter.start();
    e = assertThrows(RepastException.class, () -> slow.getOnlineFeatures(req));
    assertTrue(Thread.interrupted(), "the interrupt flag is kept");
    assertTrue(e.getMessage().endsWith("interrupted"), e.getMessage());
    interrupter.join();
    assertTrue(System.nanoTime() - start < Duration.ofSeconds(5).toNanos(), "timeouts and interrupts stop the retries");
  }
}
