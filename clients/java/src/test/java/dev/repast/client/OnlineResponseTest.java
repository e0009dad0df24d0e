package dev.repast.client;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import com.fasterxml.jackson.databind.ObjectMapper;
import java.nio.charset.StandardCharsets;
import java.time.Instant;
import java.time.format.DateTimeParseException;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/** The answer parser on shapes the server's answers do not happen to use today. */
class OnlineResponseTest {
  @ParameterizedTest
  @ValueSource(
      strings = {
        "2024-01-01T12:00:00Z", "2024-02-29T23:59:59.123456789Z", "2024-01-01T00:00:00.5Z",
        "1969-12-31T23:59:59.999999Z", "2024-01-01T12:00:00+02:00", "0001-01-01T00:00:00Z"
      })
  void eventTimesAsInstantParse(String text) {
    assertEquals(Instant.parse(text), OnlineResponse.parseUtc(text));
  }

  @Test
  void badEventTimesFail() {
    assertThrows(DateTimeParseException.class, () -> OnlineResponse.parseUtc("2024-02-30T00:00:00Z"));
  }

  @Test
  void shapes() throws Exception {
    String body =
        " { \"metadata\" : { \"extra\": [1, {\"a\": \"}\"}], \"feature_names\" : [\"id\", \"n\\\"a\\u00e9\"] },"
            + " \"status\": null, \"results\" : ["
            + " {\"values\": [ 7 , -1.5e3 ], \"statuses\": [\"PRESENT\",\"NOT_FOUND\"],"
            + "  \"event_timestamps\": [\"1970-01-01T00:00:00Z\", \"2024-01-01T12:00:00+02:00\"]},"
            + " {\"event_timestamps\": [\"2024-02-29T23:59:59.123456789Z\", \"2024-01-01T00:00:00.5Z\"],"
            + "  \"values\": [ \"x\\\"]\\\\\", [[1, \"]\"], {\"k\": [2]}] ], \"statuses\": [\"OUTSIDE_MAX_AGE\", \"PRESENT\"]}"
            + " ] } ";
    OnlineResponse r = OnlineResponse.parse(new ObjectMapper(), body.getBytes(StandardCharsets.UTF_8));
    assertEquals("n\"aé", r.featureNames().get(1));
    ResultColumn id = r.column("id");
    ResultColumn c = r.column("n\"aé");
    assertEquals(-1500.0, id.float64s().get(1));
    assertEquals("x\"]\\", c.raw(0).textValue());
    assertEquals("[[1,\"]\"],{\"k\":[2]}]", c.raw(1).toString());
    assertEquals(FieldStatus.OUTSIDE_MAX_AGE, c.status(0));
    assertEquals(Instant.parse("2024-01-01T10:00:00Z"), id.eventTimestamps().get(1));
    assertEquals(Instant.parse("2024-02-29T23:59:59.123456789Z"), c.eventTimestamps().get(0));
    assertThrows(RepastException.class, c::strings);
    for (String bad :
        new String[] {
          "", "{", "[]", "{\"results\": [], \"metadata\": {\"feature_names\": [\"a\"]}}",
          "{\"results\": [{\"values\": [1], \"statuses\": [\"WHAT\"], \"event_timestamps\": [\"1970-01-01T00:00:00Z\"]}],"
              + " \"metadata\": {\"feature_names\": [\"a\"]}}",
          "{\"results\": [{\"values\": [1, 2], \"statuses\": [\"PRESENT\"], \"event_timestamps\": [\"1970-01-01T00:00:00Z\"]}],"
              + " \"metadata\": {\"feature_names\": [\"a\"]}}"
        }) {
      assertThrows(
          Exception.class, () -> OnlineResponse.parse(new ObjectMapper(), bad.getBytes(StandardCharsets.UTF_8)), bad);
    }
  }
}
