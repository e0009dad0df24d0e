package dev.repast.client;

import com.fasterxml.jackson.databind.JsonNode;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Base64;
import java.util.Collections;
import java.util.List;
import java.util.function.Function;

/**
 * One column of an {@link OnlineResponse}: a value, status and event time per entity row. The
 * JSON answer does not say a column's type, so values are read with the accessor of the
 * feature's type ({@link #int64s()}, {@link #float64s()}, {@link #strings()}, ...), which fails
 * on a value of another JSON kind. A null value (a stored null, or a NOT_FOUND row) is {@code
 * null} in every accessor's list.
 */
public final class ResultColumn {
  private final String name;
  private final List<JsonNode> values;
  private final List<FieldStatus> statuses;
  private final List<Instant> eventTimestamps;

  ResultColumn(
      String name, List<JsonNode> values, List<FieldStatus> statuses, List<Instant> eventTimes) {
    this.name = name;
    this.values = values;
    this.statuses = Collections.unmodifiableList(statuses);
    this.eventTimestamps = Collections.unmodifiableList(eventTimes);
  }

  public String name() {
    return name;
  }

  public int size() {
    return values.size();
  }

  public List<FieldStatus> statuses() {
    return statuses;
  }

  public FieldStatus status(int row) {
    return statuses.get(row);
  }

  /** Event time of each row's value (the epoch for join keys and NOT_FOUND rows). */
  public List<Instant> eventTimestamps() {
    return eventTimestamps;
  }

  public boolean isNull(int row) {
    return values.get(row).isNull();
  }

  /** The value as the server wrote it. */
  public JsonNode raw(int row) {
    return values.get(row);
  }

  private <T> List<T> read(String kind, Function<JsonNode, T> parse) {
    List<T> out = new ArrayList<>(values.size());
    for (int row = 0; row < values.size(); row++) {
      JsonNode v = values.get(row);
      if (v.isNull()) {
        out.add(null);
        continue;
      }
      try {
        out.add(parse.apply(v));
      } catch (IllegalArgumentException e) {
        throw new RepastException(
            "repast: column '" + name + "' row " + row + ": not " + kind + ": " + v, e);
      }
    }
    return Collections.unmodifiableList(out);
  }

  private static <T> Function<JsonNode, List<T>> listOf(Function<JsonNode, T> parse) {
    return v -> {
      if (!v.isArray()) {
        throw new IllegalArgumentException("not a list");
      }
      List<T> out = new ArrayList<>(v.size());
      for (JsonNode item : v) {
        out.add(item.isNull() ? null : parse.apply(item));
      }
      return Collections.unmodifiableList(out);
    };
  }

  static long asLong(JsonNode v) {
    if (!v.isIntegralNumber() || !v.canConvertToLong()) {
      throw new IllegalArgumentException("not an int64");
    }
    return v.longValue();
  }

  static int asInt(JsonNode v) {
    if (!v.isIntegralNumber() || !v.canConvertToInt()) {
      throw new IllegalArgumentException("not an int32");
    }
    return v.intValue();
  }

  static double asDouble(JsonNode v) {
    if (v.isNumber()) {
      return v.doubleValue();
    }
    switch (v.isTextual() ? v.textValue() : "") {
      case "NaN":
        return Double.NaN;
      case "Infinity":
        return Double.POSITIVE_INFINITY;
      case "-Infinity":
        return Double.NEGATIVE_INFINITY;
      default:
        throw new IllegalArgumentException("not a number");
    }
  }

  // float32 features arrive widened to float64; narrowing gives back the stored float32.
  static float asFloat(JsonNode v) {
    return (float) asDouble(v);
  }

  static String asString(JsonNode v) {
    if (!v.isTextual()) {
      throw new IllegalArgumentException("not a string");
    }
    return v.textValue();
  }

  static byte[] asBytes(JsonNode v) {
    return Base64.getDecoder().decode(asString(v));
  }

  static boolean asBool(JsonNode v) {
    if (!v.isBoolean()) {
      throw new IllegalArgumentException("not a boolean");
    }
    return v.booleanValue();
  }

  // UnixTimestamp features are integer seconds since the epoch.
  static Instant asInstant(JsonNode v) {
    return Instant.ofEpochSecond(asLong(v));
  }

  public List<Long> int64s() {
    return read("an int64", ResultColumn::asLong);
  }

  public List<Integer> int32s() {
    return read("an int32", ResultColumn::asInt);
  }

  /** Float64 values, "NaN", "Infinity" and "-Infinity" included. */
  public List<Double> float64s() {
    return read("a float64", ResultColumn::asDouble);
  }

  public List<Float> float32s() {
    return read("a float32", ResultColumn::asFloat);
  }

  public List<String> strings() {
    return read("a string", ResultColumn::asString);
  }

  /** Bytes values (base64 in the JSON). */
  public List<byte[]> bytes() {
    return read("bytes", ResultColumn::asBytes);
  }

  public List<Boolean> bools() {
    return read("a boolean", ResultColumn::asBool);
  }

  /** UnixTimestamp values (whole seconds). */
  public List<Instant> times() {
    return read("a unix timestamp", ResultColumn::asInstant);
  }

  public List<List<Long>> int64Lists() {
    return read("a list of int64", listOf(ResultColumn::asLong));
  }

  public List<List<Integer>> int32Lists() {
    return read("a list of int32", listOf(ResultColumn::asInt));
  }

  public List<List<Double>> float64Lists() {
    return read("a list of float64", listOf(ResultColumn::asDouble));
  }

  public List<List<Float>> float32Lists() {
    return read("a list of float32", listOf(ResultColumn::asFloat));
  }

  public List<List<String>> stringLists() {
    return read("a list of strings", listOf(ResultColumn::asString));
  }

  public List<List<byte[]>> bytesLists() {
    return read("a list of bytes", listOf(ResultColumn::asBytes));
  }

  public List<List<Boolean>> boolLists() {
    return read("a list of booleans", listOf(ResultColumn::asBool));
  }

  public List<List<Instant>> timeLists() {
    return read("a list of unix timestamps", listOf(ResultColumn::asInstant));
  }
}
