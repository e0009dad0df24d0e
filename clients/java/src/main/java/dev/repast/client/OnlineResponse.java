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
  private final Map<String, ResultColumn> byName;

  OnlineResponse(List<String> featureNames, List<ResultColumn> columns) {
    this.featureNames = Collections.unmodifiableList(featureNames);
    this.columns = Collections.unmodifiableList(columns);
    this.byName = new HashMap<>(columns.size() * 2);
    for (ResultColumn c : columns) {
      byName.putIfAbsent(c.name(), c);
    }
  }

  public List<String> featureNames() {
    return featureNames;
  }

  public List<ResultColumn> columns() {
    return columns;
  }

  /** The column called {@code name}, or null. */
  public ResultColumn column(String name) {
    return byName.get(name);
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
            readResult(mapper, p, v, s, ts);
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
      List<Instant> times)
      throws IOException {
    String lastTime = null;
    Instant lastInstant = null;
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
            String s = p.getText();
            // The views of a row share event times: most strings repeat the one before.
            if (!s.equals(lastTime)) {
              lastInstant = s.equals("1970-01-01T00:00:00Z") ? EPOCH : Instant.parse(s);
              lastTime = s;
            }
            times.add(lastInstant);
          }
          break;
        default:
          p.skipChildren();
      }
    }
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
