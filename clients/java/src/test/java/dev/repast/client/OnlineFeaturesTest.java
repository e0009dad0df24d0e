package dev.repast.client;

import static dev.repast.client.Sdk.allTypeFeatures;
import static dev.repast.client.Sdk.assertEqualsSdk;
import static dev.repast.client.Sdk.request;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

@ExtendWith(Servers.Extension.class)
class OnlineFeaturesTest {
  private final Servers servers = Servers.get();
  private final RepastClient client = servers.client().build();
  private static final List<Long> IDS = List.of(1001L, 1002L, 1003L, 1004L);

  /**
   * Every value type, nulls and a missing entity (1004), as features, with full names and
   * through a feature service: the typed columns equal the Python SDK's.
   */
  @ParameterizedTest
  @CsvSource({"false,", "true,", "false,all_types_service"})
  void everyTypeEqualsTheSdk(boolean full, String service) throws Exception {
    List<String> features = allTypeFeatures("all_types");
    OnlineResponse got =
        client.getOnlineFeatures(
            OnlineRequest.builder()
                .entities(Column.int64s("driver_id", IDS))
                .features(features)
                .featureService(service)
                .fullFeatureNames(full)
                .build());
    assertEqualsSdk(got, servers.sdkExpect(request(Map.of("driver_id", IDS), features, service, full)));
    assertEquals(17, got.columns().size());
    assertEquals(4, got.rows());
  }

  /** Spot checks of the decoded values, so a bug shared by the SDK and the server still shows. */
  @Test
  void typedValues() {
    OnlineResponse r =
        client.getOnlineFeatures(
            OnlineRequest.builder().entities(Column.int64s("driver_id", IDS)).features(allTypeFeatures("all_types")).build());
    assertEquals(List.of((1L << 53) + 1, Long.MIN_VALUE), List.of(r.column("i64").int64s().get(0), r.column("i64").int64s().get(2)));
    assertEquals(0.2f, r.column("f32").float32s().get(0));
    assertEquals(1.0 / 3.0, r.column("f64").float64s().get(0));
    assertEquals(Double.NEGATIVE_INFINITY, r.column("f64").float64s().get(2));
    assertEquals("héllo \"wörld\"\n", r.column("str").strings().get(0));
    assertArrayEquals(new byte[] {0, 1, (byte) 0xfe, (byte) 0xff}, r.column("byt").bytes().get(0));
    assertEquals(Instant.parse("2023-06-01T08:30:00Z"), r.column("ts").times().get(0));
    ResultColumn list = r.column("i32_list");
    assertTrue(list.isNull(1));
    assertFalse(list.isNull(2));
    assertEquals(List.of(), list.int32Lists().get(2));
    assertNull(list.int32Lists().get(1));
    assertEquals(
        List.of(FieldStatus.PRESENT, FieldStatus.PRESENT, FieldStatus.PRESENT, FieldStatus.NOT_FOUND), list.statuses());
    assertEquals(Instant.parse("2024-01-01T12:30:15.250Z"), list.eventTimestamps().get(2));
    RepastException e = assertThrows(RepastException.class, () -> r.column("str").int64s());
    assertTrue(e.getMessage().contains("column 'str' row 0: not an int64"), e.getMessage());
  }

  /** Columns in request order across views; rows in request order, duplicates, a missing entity. */
  @Test
  void requestOrder() throws Exception {
    List<String> features = List.of("wide:w07", "all_types:str", "wide:w01", "all_types:i64_list", "wide:w49", "wide:w00");
    List<Long> ids = List.of(1003L, 1050L, 9999L, 1001L, 1003L);
    OnlineResponse r =
        client.getOnlineFeatures(OnlineRequest.builder().entities(Column.int64s("driver_id", ids)).features(features).build());
    assertEquals(List.of("driver_id", "w07", "str", "w01", "i64_list", "w49", "w00"), r.featureNames());
    assertEqualsSdk(r, servers.sdkExpect(request(Map.of("driver_id", ids), features, null, false)));
    assertEquals(1050L * 1000, r.column("w00").int64s().get(1));
  }

  /** 32 threads share one client; every answer is the right one for its request. */
  @Test
  void concurrentCallers() throws Exception {
    ExecutorService pool = Executors.newFixedThreadPool(32);
    try {
      List<Future<?>> futures = new ArrayList<>();
      for (int t = 0; t < 32; t++) {
        int thread = t;
        futures.add(
            pool.submit(
                () -> {
                  for (int i = 0; i < 20; i++) {
                    long id = 1001 + (thread * 20 + i) % 100;
                    OnlineResponse r =
                        client.getOnlineFeatures(
                            OnlineRequest.builder()
                                .entities(Column.int64s("driver_id", id))
                                .features("wide:w00", "wide:w03")
                                .build());
                    assertEquals(id * 1000, r.column("w00").int64s().get(0));
                    assertEquals("value-3-" + id, r.column("w03").strings().get(0));
                  }
                  return null;
                }));
      }
      for (Future<?> f : futures) {
        f.get();
      }
    } finally {
      pool.shutdownNow();
    }
  }

  @Test
  void health() {
    Health h = client.health();
    assertTrue(h.isOk(), h.toString());
    assertEquals("clients", h.project());
    assertTrue(h.problems().isEmpty());
  }
}
