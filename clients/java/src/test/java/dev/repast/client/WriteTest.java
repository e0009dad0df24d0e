package dev.repast.client;

import static dev.repast.client.Sdk.allTypeFeatures;
import static dev.repast.client.Sdk.assertEqualsSdk;
import static dev.repast.client.Sdk.request;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.charset.StandardCharsets;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;

@ExtendWith(Servers.Extension.class)
class WriteTest {
  private final Servers servers = Servers.get();
  private final RepastClient client = servers.client().build();

  static List<Column> pushRow(long id, Instant at, long i64, boolean nulls) {
    Instant t1 = Instant.parse("2023-06-01T08:30:00Z");
    List<Column> cols = new ArrayList<>(List.of(
        Column.int64s("driver_id", id),
        Column.times("event_timestamp", at),
        Column.times("created", at),
        Column.int64s("i64", i64)));
    if (nulls) {
      // Every feature but i64 null (a row of nulls only is skipped, as in Feast).
      cols.addAll(List.of(
          Column.int32s("i32", (Integer) null), Column.float32s("f32", (Float) null),
          Column.float64s("f64", (Double) null), Column.strings("str", (String) null),
          Column.bytes("byt", (byte[]) null), Column.bools("flag", (Boolean) null),
          Column.times("ts", (Instant) null), Column.int32Lists("i32_list", Arrays.asList((List<Integer>) null)),
          Column.int64Lists("i64_list", Arrays.asList((List<Long>) null)),
          Column.float32Lists("f32_list", Arrays.asList((List<Float>) null)),
          Column.float64Lists("f64_list", Arrays.asList((List<Double>) null)),
          Column.stringLists("str_list", Arrays.asList((List<String>) null)),
          Column.bytesLists("byt_list", Arrays.asList((List<byte[]>) null)),
          Column.boolLists("flag_list", Arrays.asList((List<Boolean>) null)),
          Column.timeLists("ts_list", Arrays.asList((List<Instant>) null))));
      return cols;
    }
    cols.addAll(List.of(
        Column.int32s("i32", -5),
        Column.float32s("f32", 1.5f),
        Column.float64s("f64", Double.POSITIVE_INFINITY),
        Column.strings("str", "ünï \"q\" \\ \t"),
        Column.bytes("byt", "plain".getBytes(StandardCharsets.UTF_8)),
        Column.bools("flag", false),
        Column.times("ts", t1),
        Column.int32Lists("i32_list", List.of(List.of(Integer.MAX_VALUE, Integer.MIN_VALUE))),
        Column.int64Lists("i64_list", List.of(List.of())),
        Column.float32Lists("f32_list", List.of(List.of(0.1f, -0.0f))),
        Column.float64Lists("f64_list", List.of(List.of(Double.MAX_VALUE, 2.0))),
        Column.stringLists("str_list", List.of(List.of("x", ""))),
        Column.bytesLists("byt_list", List.of(List.of("a".getBytes(StandardCharsets.UTF_8), new byte[0]))),
        Column.boolLists("flag_list", List.of(List.of(true))),
        Column.timeLists("ts_list", List.of(List.of(t1, Instant.EPOCH)))));
    return cols;
  }

  /**
   * A push of every type reads back as pushed and equal to the SDK's read; pushing the same row
   * again (a retried push) and an older row change nothing.
   */
  @Test
  void pushEveryTypeAndNewerWins() throws Exception {
    Instant at = Instant.parse("2024-03-01T10:00:00.123456Z");
    client.push("all_types_push", pushRow(4001, at, 42, false).toArray(Column[]::new));
    client.push("all_types_push", pushRow(4002, at, 0, true).toArray(Column[]::new));
    client.push("all_types_push", pushRow(4001, at, 42, false).toArray(Column[]::new));
    client.push("all_types_push", pushRow(4001, at.minusSeconds(3600), 7, false).toArray(Column[]::new));
    List<String> features = allTypeFeatures("pushed");
    OnlineResponse r =
        client.getOnlineFeatures(
            OnlineRequest.builder().entities(Column.int64s("driver_id", 4001L, 4002L)).features(features).build());
    assertEqualsSdk(r, servers.sdkExpect(request(Map.of("driver_id", List.of(4001, 4002)), features, null, false)));
    assertEquals(42L, r.column("i64").int64s().get(0), "newer wins");
    assertEquals(at, r.column("i64").eventTimestamps().get(0));
    assertEquals("ünï \"q\" \\ \t", r.column("str").strings().get(0));
    assertEquals(Double.POSITIVE_INFINITY, r.column("f64").float64s().get(0));
    assertEquals(Double.MAX_VALUE, r.column("f64_list").float64Lists().get(0).get(0));
    for (ResultColumn c : r.columns().subList(1, r.columns().size())) {
      if (!c.name().equals("i64")) {
        assertTrue(c.isNull(1) && c.status(1) == FieldStatus.PRESENT, c.name() + " row 1: want a PRESENT null");
      }
    }
  }

  /** String join keys, written with writeToOnlineStore. */
  @Test
  void writeToOnlineStoreWithStringKeys() throws Exception {
    Instant at = Instant.parse("2024-05-05T05:05:05Z");
    client.writeToOnlineStore(
        "user_stats",
        Column.strings("user_id", "dora", "erin"),
        Column.times("event_timestamp", at, at),
        Column.float64s("score", 0.75, -1e-9),
        Column.int64s("visits", 3L, null));
    List<String> features = List.of("user_stats:score", "user_stats:visits");
    OnlineResponse r =
        client.getOnlineFeatures(
            OnlineRequest.builder()
                .entities(Column.strings("user_id", "erin", "frank", "dora"))
                .features(features)
                .fullFeatureNames(true)
                .build());
    assertEqualsSdk(r, servers.sdkExpect(request(Map.of("user_id", List.of("erin", "frank", "dora")), features, null, true)));
    assertEquals(Arrays.asList(-1e-9, null, 0.75), r.column("user_stats__score").float64s());
    assertEquals(FieldStatus.NOT_FOUND, r.column("user_stats__score").status(1));
  }

  @Test
  void materializeIncrementalAndAsync() {
    client.materializeIncremental(Instant.now(), "wide");
    client.materialize(
        new MaterializeRequest(
            Instant.parse("2020-01-01T00:00:00Z"), Instant.parse("2025-01-01T00:00:00Z"), List.of("wide"), false, true, true));
    RepastApiException e =
        org.junit.jupiter.api.Assertions.assertThrows(
            RepastApiException.class, () -> client.materializeIncremental(Instant.now(), "nope"));
    assertEquals(404, e.status());
    assertEquals("FeatureViewNotFoundError", e.error());
    assertTrue(e.detail().contains("nope"), e.detail());
    e =
        org.junit.jupiter.api.Assertions.assertThrows(
            RepastApiException.class,
            () -> client.materialize(MaterializeRequest.of(Instant.now(), Instant.now().minusSeconds(3600))));
    assertEquals(400, e.status());
    assertTrue(e.detail().contains("must be before end_ts"), e.detail());
  }
}
