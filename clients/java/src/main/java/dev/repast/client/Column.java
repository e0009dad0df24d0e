package dev.repast.client;

import com.fasterxml.jackson.core.JsonGenerator;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;
import java.time.Instant;
import java.time.ZoneOffset;
import java.time.format.DateTimeFormatter;
import java.time.temporal.ChronoUnit;
import java.util.Arrays;
import java.util.List;
import java.util.Objects;

/**
 * A named column of typed values sent to the server: an entity column of a request, or a
 * column of the rows of a push or an online write. A null element is a null value.
 *
 * <pre>{@code
 * Column.int64s("driver_id", 1001L, 1002L)
 * Column.times("event_timestamp", Instant.now())
 * Column.float64Lists("embedding", List.of(List.of(0.1, 0.2)))
 * }</pre>
 */
public final class Column {
  @FunctionalInterface
  private interface ValueWriter<T> {
    void write(JsonGenerator g, T value) throws IOException;
  }

  private final String name;
  private final List<?> values;
  private final ValueWriter<Object> writer;

  @SuppressWarnings("unchecked")
  private <T> Column(String name, List<T> values, ValueWriter<T> writer) {
    this.name = Objects.requireNonNull(name, "name");
    this.values = Objects.requireNonNull(values, "values");
    this.writer = (ValueWriter<Object>) writer;
  }

  public String name() {
    return name;
  }

  public int size() {
    return values.size();
  }

  void writeValues(JsonGenerator g) throws IOException {
    g.writeStartArray();
    for (int row = 0; row < values.size(); row++) {
      Object v = values.get(row);
      if (v == null) {
        g.writeNull();
      } else {
        try {
          writer.write(g, v);
        } catch (IllegalArgumentException e) {
          throw new IllegalArgumentException(
              "column '" + name + "' row " + row + ": " + e.getMessage(), e);
        }
      }
    }
    g.writeEndArray();
  }

  private static <T> Column list(String name, List<? extends List<T>> values, ValueWriter<T> w) {
    @SuppressWarnings("unchecked")
    List<List<T>> lists = (List<List<T>>) values;
    return new Column(
        name,
        lists,
        (JsonGenerator g, List<T> list) -> {
          g.writeStartArray();
          for (T item : list) {
            if (item == null) {
              g.writeNull();
            } else {
              w.write(g, item);
            }
          }
          g.writeEndArray();
        });
  }

  private static void writeDouble(JsonGenerator g, double v) throws IOException {
    // JSON has no NaN or infinities; the server writes (and reads) them as these strings.
    if (Double.isNaN(v)) {
      g.writeString("NaN");
    } else if (Double.isInfinite(v)) {
      g.writeString(v > 0 ? "Infinity" : "-Infinity");
    } else {
      g.writeNumber(v);
    }
  }

  private static void writeFloat(JsonGenerator g, Float v) throws IOException {
    if (v.isNaN() || v.isInfinite()) {
      writeDouble(g, v.doubleValue());
    } else {
      // Float.toString is the shortest form that reads back as the same float32.
      g.writeNumber(v.floatValue());
    }
  }

  // The server stores a pushed JSON string's UTF-8 bytes as a bytes value (it reads bytes back
  // as base64 but does not decode base64 on writes), so only valid UTF-8 round-trips.
  private static void writeBytes(JsonGenerator g, byte[] v) throws IOException {
    try {
      String s =
          StandardCharsets.UTF_8
              .newDecoder()
              .onMalformedInput(CodingErrorAction.REPORT)
              .onUnmappableCharacter(CodingErrorAction.REPORT)
              .decode(ByteBuffer.wrap(v))
              .toString();
      g.writeString(s);
    } catch (CharacterCodingException e) {
      throw new IllegalArgumentException(
          "bytes value "
              + Arrays.toString(v)
              + " is not valid UTF-8, which is all the server's JSON push accepts for bytes");
    }
  }

  // The server keeps microseconds and refuses more fractional digits.
  private static final DateTimeFormatter RFC3339 =
      DateTimeFormatter.ISO_INSTANT.withZone(ZoneOffset.UTC);

  private static void writeInstant(JsonGenerator g, Instant v) throws IOException {
    g.writeString(RFC3339.format(v.truncatedTo(ChronoUnit.MICROS)));
  }

  /** Int64 values (Int64 features, int64 join keys). */
  public static Column int64s(String name, Long... values) {
    return int64s(name, Arrays.asList(values));
  }

  public static Column int64s(String name, List<Long> values) {
    return new Column(name, values, (g, v) -> g.writeNumber((long) v));
  }

  public static Column int32s(String name, Integer... values) {
    return int32s(name, Arrays.asList(values));
  }

  public static Column int32s(String name, List<Integer> values) {
    return new Column(name, values, (g, v) -> g.writeNumber((int) v));
  }

  /** Float64 values; NaN and infinities are sent as the server writes them. */
  public static Column float64s(String name, Double... values) {
    return float64s(name, Arrays.asList(values));
  }

  public static Column float64s(String name, List<Double> values) {
    return new Column(name, values, Column::writeDouble);
  }

  public static Column float32s(String name, Float... values) {
    return float32s(name, Arrays.asList(values));
  }

  public static Column float32s(String name, List<Float> values) {
    return new Column(name, values, Column::writeFloat);
  }

  public static Column strings(String name, String... values) {
    return strings(name, Arrays.asList(values));
  }

  public static Column strings(String name, List<String> values) {
    return new Column(name, values, JsonGenerator::writeString);
  }

  public static Column bools(String name, Boolean... values) {
    return bools(name, Arrays.asList(values));
  }

  public static Column bools(String name, List<Boolean> values) {
    return new Column(name, values, (g, v) -> g.writeBoolean(v));
  }

  /** Bytes values; they must be valid UTF-8 (see the README: the server's JSON push). */
  public static Column bytes(String name, byte[]... values) {
    return bytes(name, Arrays.asList(values));
  }

  public static Column bytes(String name, List<byte[]> values) {
    return new Column(name, values, Column::writeBytes);
  }

  /**
   * Instants: event and created timestamps, and UnixTimestamp features; sent as RFC 3339 in
   * UTC, truncated to microseconds.
   */
  public static Column times(String name, Instant... values) {
    return times(name, Arrays.asList(values));
  }

  public static Column times(String name, List<Instant> values) {
    return new Column(name, values, Column::writeInstant);
  }

  public static Column int64Lists(String name, List<? extends List<Long>> values) {
    return list(name, values, (g, v) -> g.writeNumber((long) v));
  }

  public static Column int32Lists(String name, List<? extends List<Integer>> values) {
    return list(name, values, (g, v) -> g.writeNumber((int) v));
  }

  public static Column float64Lists(String name, List<? extends List<Double>> values) {
    return list(name, values, Column::writeDouble);
  }

  public static Column float32Lists(String name, List<? extends List<Float>> values) {
    return list(name, values, Column::writeFloat);
  }

  public static Column stringLists(String name, List<? extends List<String>> values) {
    return list(name, values, JsonGenerator::writeString);
  }

  public static Column boolLists(String name, List<? extends List<Boolean>> values) {
    return list(name, values, (g, v) -> g.writeBoolean(v));
  }

  public static Column bytesLists(String name, List<? extends List<byte[]>> values) {
    return list(name, values, Column::writeBytes);
  }

  public static Column timeLists(String name, List<? extends List<Instant>> values) {
    return list(name, values, Column::writeInstant);
  }
}
