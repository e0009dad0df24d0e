package dev.repast.client;

import com.fasterxml.jackson.core.JsonParser;
import com.fasterxml.jackson.core.JsonToken;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.BigIntegerNode;
import com.fasterxml.jackson.databind.node.BooleanNode;
import com.fasterxml.jackson.databind.node.DoubleNode;
import com.fasterxml.jackson.databind.node.LongNode;
import com.fasterxml.jackson.databind.node.NullNode;
import com.fasterxml.jackson.databind.node.TextNode;
import java.io.IOException;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Collections;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * The answer to getOnlineFeatures: one column per name of {@link #featureNames()} (join keys
 * first, then the features in request order), each with one value, status and event time per
 * entity row, in the request's row order.
 */
public final class OnlineResponse {
  private final List<String> featureNames;
  private final List<ResultColumn> columns;
  // Built on the first look-up by name (callers that read columns by position never pay it);
  // volatile, so a response handed to other threads is read safely.
  private volatile Map<String, ResultColumn> byName;

  OnlineResponse(List<String> featureNames, List<ResultColumn> columns) {
    this.featureNames = Collections.unmodifiableList(featureNames);
    this.columns = Collections.unmodifiableList(columns);
  }

  public List<String> featureNames() {
    return featureNames;
  }

  public List<ResultColumn> columns() {
    return columns;
  }

  /** The column called {@code name}, or null. */
  public ResultColumn column(String name) {
    if (columns.size() <= 8) {
      for (ResultColumn c : columns) {
        if (c.name().equals(name)) {
          return c;
        }
      }
      return null;
    }
    Map<String, ResultColumn> index = byName;
    if (index == null) {
      index = new HashMap<>(columns.size() * 2);
      for (ResultColumn c : columns) {
        index.putIfAbsent(c.name(), c);
      }
      byName = index;
    }
    return index.get(name);
  }

  /** The number of entity rows. */
  public int rows() {
    return columns.isEmpty() ? 0 : columns.get(0).size();
  }

  private static final Instant EPOCH = Instant.EPOCH;

  /**
   * Reads the answer with Jackson's streaming parser: scalar values become nodes directly and
   * only lists go through the tree reader, which a 1 x 50 answer would otherwise pay for 150
   * times.
   */
  static OnlineResponse parse(ObjectMapper mapper, byte[] body) throws IOException {
    List<String> names = new ArrayList<>();
    TimeCache timeCache = new TimeCache();
    List<List<JsonNode>> values = new ArrayList<>();
    List<List<FieldStatus>> statuses = new ArrayList<>();
    List<List<Instant>> times = new ArrayList<>();
    try (JsonParser p = mapper.getFactory().createParser(body)) {
      expect(p, p.nextToken(), JsonToken.START_OBJECT);
      while (p.nextToken() == JsonToken.FIELD_NAME) {
        String key = p.currentName();
        JsonToken t = p.nextToken();
        if (key.equals("results")) {
          expect(p, t, JsonToken.START_ARRAY);
          while (p.nextToken() == JsonToken.START_OBJECT) {
            List<JsonNode> v = new ArrayList<>();
            List<FieldStatus> s = new ArrayList<>();
            List<Instant> ts = new ArrayList<>();
            readResult(mapper, p, v, s, ts, timeCache);
            values.add(v);
            statuses.add(s);
            times.add(ts);
          }
        } else if (key.equals("metadata")) {
          expect(p, t, JsonToken.START_OBJECT);
          while (p.nextToken() == JsonToken.FIELD_NAME) {
            String mkey = p.currentName();
            JsonToken mt = p.nextToken();
            if (mkey.equals("feature_names")) {
              expect(p, mt, JsonToken.START_ARRAY);
              while (p.nextToken() == JsonToken.VALUE_STRING) {
                names.add(p.getText());
              }
            } else {
              p.skipChildren();
            }
          }
        } else {
          p.skipChildren();
        }
      }
    }
    if (names.size() != values.size()) {
      throw new IOException(names.size() + " feature names for " + values.size() + " columns");
    }
    List<ResultColumn> columns = new ArrayList<>(names.size());
    for (int i = 0; i < names.size(); i++) {
      int n = values.get(i).size();
      if (statuses.get(i).size() != n || times.get(i).size() != n) {
        throw new IOException(
            "column '"
                + names.get(i)
                + "': "
                + n
                + " values, "
                + statuses.get(i).size()
                + " statuses, "
                + times.get(i).size()
                + " event timestamps");
      }
      columns.add(new ResultColumn(names.get(i), values.get(i), statuses.get(i), times.get(i)));
    }
    return new OnlineResponse(names, columns);
  }

  private static void readResult(
      ObjectMapper mapper,
      JsonParser p,
      List<JsonNode> values,
      List<FieldStatus> statuses,
      List<Instant> times,
      TimeCache timeCache)
      throws IOException {
    while (p.nextToken() == JsonToken.FIELD_NAME) {
      String key = p.currentName();
      JsonToken t = p.nextToken();
      switch (key) {
        case "values":
          expect(p, t, JsonToken.START_ARRAY);
          for (JsonToken v = p.nextToken(); v != JsonToken.END_ARRAY; v = p.nextToken()) {
            values.add(node(mapper, p, v));
          }
          break;
        case "statuses":
          expect(p, t, JsonToken.START_ARRAY);
          while (p.nextToken() == JsonToken.VALUE_STRING) {
            statuses.add(FieldStatus.parse(p.getText()));
          }
          break;
        case "event_timestamps":
          expect(p, t, JsonToken.START_ARRAY);
          while (p.nextToken() == JsonToken.VALUE_STRING) {
            times.add(timeCache.parse(p.getText()));
          }
          break;
        default:
          p.skipChildren();
      }
    }
  }

  /**
   * The last event time parsed: the views of an entity row share event times, so most strings
   * of an answer repeat the one before.
   */
  private static final class TimeCache {
    private String last;
    private Instant instant;

    Instant parse(String s) {
      if (!s.equals(last)) {
        instant = s.equals("1970-01-01T00:00:00Z") ? EPOCH : parseUtc(s);
        last = s;
      }
      return instant;
    }
  }

  /**
   * The server's own form, "2024-01-01T12:00:00[.fff[fff[fff]]]Z", read several times faster
   * than {@link Instant#parse}; anything else goes to Instant.parse.
   */
  static Instant parseUtc(String s) {
    int n = s.length();
    if (n < 20 || s.charAt(n - 1) != 'Z' || s.charAt(4) != '-' || s.charAt(7) != '-'
        || s.charAt(10) != 'T' || s.charAt(13) != ':' || s.charAt(16) != ':'
        || (n > 20 && (s.charAt(19) != '.' || n > 30))) {
      return Instant.parse(s);
    }
    try {
      long nanos = 0;
      if (n > 20) {
        nanos = digits(s, 20, n - 1);
        for (int i = n - 21; i < 9; i++) {
          nanos *= 10;
        }
      }
      long day =
          java.time.LocalDate.of((int) digits(s, 0, 4), (int) digits(s, 5, 7), (int) digits(s, 8, 10))
              .toEpochDay();
      long hour = digits(s, 11, 13);
      long minute = digits(s, 14, 16);
      long second = digits(s, 17, 19);
      if (hour > 23 || minute > 59 || second > 59) {
        return Instant.parse(s);
      }
      return Instant.ofEpochSecond(day * 86400 + hour * 3600 + minute * 60 + second, nanos);
    } catch (java.time.DateTimeException | NumberFormatException e) {
      return Instant.parse(s);
    }
  }

  private static long digits(String s, int from, int to) {
    long v = 0;
    for (int i = from; i < to; i++) {
      char c = s.charAt(i);
      if (c < '0' || c > '9') {
        throw new NumberFormatException(s);
      }
      v = v * 10 + (c - '0');
    }
    return v;
  }

  private static JsonNode node(ObjectMapper mapper, JsonParser p, JsonToken t) throws IOException {
    switch (t) {
      case VALUE_NULL:
        return NullNode.getInstance();
      case VALUE_TRUE:
        return BooleanNode.TRUE;
      case VALUE_FALSE:
        return BooleanNode.FALSE;
      case VALUE_STRING:
        return TextNode.valueOf(p.getText());
      case VALUE_NUMBER_INT:
        return p.getNumberType() == JsonParser.NumberType.BIG_INTEGER
            ? BigIntegerNode.valueOf(p.getBigIntegerValue())
            : LongNode.valueOf(p.getLongValue());
      case VALUE_NUMBER_FLOAT:
        return DoubleNode.valueOf(p.getDoubleValue());
      case START_ARRAY:
      case START_OBJECT:
        return mapper.readTree(p);
      default:
        throw new IOException("unexpected " + t + " in values");
    }
  }

  private static void expect(JsonParser p, JsonToken got, JsonToken want) throws IOException {
    if (got != want) {
      throw new IOException("expected " + want + ", got " + got + " at " + p.currentLocation());
    }
  }
}
