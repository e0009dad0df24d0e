package dev.repast.client;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.fail;

import com.fasterxml.jackson.databind.JsonNode;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Base64;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/** Compares a client's answer with the Python SDK's (clients/testdata/repo.py `expect`). */
final class Sdk {
  private Sdk() {}

  static final List<String> SCALARS = List.of("i32", "i64", "f32", "f64", "str", "byt", "flag", "ts");

  static List<String> allTypeFeatures(String view) {
    List<String> out = new ArrayList<>();
    SCALARS.forEach(n -> out.add(view + ":" + n));
    SCALARS.forEach(n -> out.add(view + ":" + n + "_list"));
    return out;
  }

  static Map<String, Object> request(
      Map<String, ?> entities, List<String> features, String service, boolean full) {
    Map<String, Object> r = new LinkedHashMap<>();
    r.put("entities", entities);
    r.put("full_feature_names", full);
    if (service != null) {
      r.put("feature_service", service);
    } else {
      r.put("features", features);
    }
    return r;
  }

  /** The value type of a column of the test repo, from its short or full name. */
  static String kindOf(String name) {
    int i = name.lastIndexOf("__");
    if (i >= 0) {
      name = name.substring(i + 2);
    }
    switch (name) {
      case "driver_id":
      case "visits":
        return "i64";
      case "user_id":
        return "str";
      case "score":
        return "f64";
      default:
        break;
    }
    if (name.length() == 3 && name.charAt(0) == 'w' && Character.isDigit(name.charAt(1))) {
      return List.of("i64", "f64", "f32", "str", "i32", "flag").get(Integer.parseInt(name.substring(1)) % 6);
    }
    return name;
  }

  /** The column read with the client's accessor for its kind. */
  static List<?> clientValues(ResultColumn c) {
    switch (kindOf(c.name())) {
      case "i32": return c.int32s();
      case "i64": return c.int64s();
      case "f32": return c.float32s();
      case "f64": return c.float64s();
      case "str": return c.strings();
      case "byt": return c.bytes();
      case "flag": return c.bools();
      case "ts": return c.times();
      case "i32_list": return c.int32Lists();
      case "i64_list": return c.int64Lists();
      case "f32_list": return c.float32Lists();
      case "f64_list": return c.float64Lists();
      case "str_list": return c.stringLists();
      case "byt_list": return c.bytesLists();
      case "flag_list": return c.boolLists();
      case "ts_list": return c.timeLists();
      default: throw new AssertionError("no kind for " + c.name());
    }
  }

  /** One oracle value decoded by the test alone (not the client's decoders). */
  static Object sdkValue(String kind, JsonNode v) {
    if (v.isNull()) {
      return null;
    }
    if (kind.endsWith("_list")) {
      String elem = kind.substring(0, kind.length() - 5);
      List<Object> out = new ArrayList<>();
      v.forEach(item -> out.add(sdkValue(elem, item)));
      return out;
    }
    switch (kind) {
      case "i32": return Integer.valueOf(v.asText());
      case "i64": return Long.valueOf(v.asText());
      case "f32": return (float) number(v);
      case "f64": return number(v);
      case "str": return v.textValue();
      case "byt": return Base64.getDecoder().decode(v.textValue());
      case "flag": return Boolean.valueOf(v.asText());
      case "ts": return Instant.ofEpochSecond(Long.parseLong(v.asText()));
      default: throw new AssertionError("no kind " + kind);
    }
  }

  private static double number(JsonNode v) {
    if (v.isTextual()) {
      return Map.of("NaN", Double.NaN, "Infinity", Double.POSITIVE_INFINITY, "-Infinity", Double.NEGATIVE_INFINITY)
          .get(v.textValue());
    }
    return Double.parseDouble(v.asText());
  }

  static boolean same(Object a, Object b) {
    if (a instanceof byte[] && b instanceof byte[]) {
      return Arrays.equals((byte[]) a, (byte[]) b);
    }
    if (a instanceof List && b instanceof List) {
      List<?> la = (List<?>) a;
      List<?> lb = (List<?>) b;
      if (la.size() != lb.size()) {
        return false;
      }
      for (int i = 0; i < la.size(); i++) {
        if (!same(la.get(i), lb.get(i))) {
          return false;
        }
      }
      return true;
    }
    // Float/Double.equals: NaN equals NaN, and a float32 compares as a float32.
    return a == null ? b == null : a.equals(b);
  }

  static String show(Object v) {
    return v instanceof byte[] ? Arrays.toString((byte[]) v) : String.valueOf(v);
  }

  /** Names, and per column and row the values, statuses and event times equal the SDK's. */
  static void assertEqualsSdk(OnlineResponse got, JsonNode want) {
    List<String> names = new ArrayList<>();
    want.get("feature_names").forEach(n -> names.add(n.textValue()));
    assertEquals(names, got.featureNames(), "feature names");
    for (int i = 0; i < got.columns().size(); i++) {
      ResultColumn col = got.columns().get(i);
      JsonNode exp = want.get("columns").get(i);
      assertEquals(exp.get("values").size(), col.size(), "rows of " + col.name());
      List<?> values = clientValues(col);
      for (int row = 0; row < col.size(); row++) {
        Object w = sdkValue(kindOf(col.name()), exp.get("values").get(row));
        if (!same(values.get(row), w)) {
          fail("column " + col.name() + " row " + row + ": got " + show(values.get(row)) + ", the SDK has " + show(w));
        }
        assertEquals(exp.get("statuses").get(row).textValue(), col.status(row).name(), col.name() + " status, row " + row);
        Instant t = col.eventTimestamps().get(row);
        long micros = t.getEpochSecond() * 1_000_000 + t.getNano() / 1_000;
        assertEquals(exp.get("event_timestamps_us").get(row).asLong(), micros, col.name() + " event time, row " + row);
      }
    }
  }
}
