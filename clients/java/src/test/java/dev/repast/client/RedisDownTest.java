package dev.repast.client;

import static dev.repast.client.Sdk.allTypeFeatures;
import static dev.repast.client.Sdk.assertEqualsSdk;
import static dev.repast.client.Sdk.request;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.time.Duration;
import java.time.Instant;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicReference;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;

@ExtendWith(Servers.Extension.class)
class RedisDownTest {
  private final Servers servers = Servers.get();

  /**
   * Redis stops: reads, pushes and health answer 503 (typed, temporary); a retrying call that
   * spans the restart succeeds; after a materialization the values equal the SDK's again.
   */
  @Test
  void serviceUnavailableThenRecovery() throws Exception {
    OnlineRequest req =
        OnlineRequest.builder()
            .entities(Column.int64s("driver_id", 1001L, 1004L))
            .features(allTypeFeatures("all_types"))
            .build();
    servers.redis.stop();
    CompletableFuture<Void> restart = null;
    try {
      RepastClient noRetry = servers.client().retryPolicy(RetryPolicy.NONE).build();
      RepastApiException e = assertThrows(RepastApiException.class, () -> noRetry.getOnlineFeatures(req));
      assertEquals(503, e.status());
      assertTrue(e.isTemporary());
      assertNotNull(e.error());
      assertFalse(e.detail().isEmpty());
      Health h = noRetry.health();
      assertEquals("unhealthy", h.status());
      assertFalse(h.problems().isEmpty());
      e =
          assertThrows(
              RepastApiException.class,
              () -> noRetry.push("all_types_push", WriteTest.pushRow(4100, Instant.now(), 1, false).toArray(Column[]::new)));
      assertEquals(503, e.status());

      AtomicInteger retries = new AtomicInteger();
      AtomicReference<CompletableFuture<Void>> started = new AtomicReference<>();
      RepastClient retrying =
          servers
              .client()
              .retryPolicy(new RetryPolicy(40, Duration.ofMillis(50), Duration.ofMillis(250)))
              .timeout(Duration.ofSeconds(30))
              .onRetry(
                  ev -> {
                    if (retries.incrementAndGet() == 1) {
                      started.set(
                          CompletableFuture.runAsync(
                              () -> {
                                try {
                                  servers.redis.start();
                                } catch (Exception ex) {
                                  throw new IllegalStateException(ex);
                                }
                              }));
                    }
                  })
              .build();
      OnlineResponse r = retrying.getOnlineFeatures(req);
      restart = started.get();
      restart.get();
      assertTrue(retries.get() > 0, "retried while Redis was down");
      // Redis restarted empty (no persistence): not found until materialized again.
      assertEquals(FieldStatus.NOT_FOUND, r.column("i64").status(0));
    } finally {
      if (restart == null) {
        servers.redis.start();
      }
      servers.materializeAll();
    }
    RepastClient c = servers.client().build();
    assertEqualsSdk(
        c.getOnlineFeatures(req),
        servers.sdkExpect(request(Map.of("driver_id", List.of(1001, 1004)), allTypeFeatures("all_types"), null, false)));
    assertTrue(c.health().isOk());
  }
}
