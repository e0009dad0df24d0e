package dev.repast.client;

import com.fasterxml.jackson.core.JsonGenerator;
import com.fasterxml.jackson.core.util.ByteArrayBuilder;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpConnectTimeoutException;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.net.http.HttpTimeoutException;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.time.Instant;
import java.time.temporal.ChronoUnit;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Objects;
import java.util.concurrent.ThreadLocalRandom;
import java.util.concurrent.TimeUnit;
import java.util.function.Consumer;

/**
 * A client of one feature server's HTTP JSON API (Repast's or Feast's): online reads, push,
 * writes to the online store, materialization, health.
 *
 * <p>Thread-safe: share one instance; its {@link HttpClient} pools keep-alive connections.
 * Calls that fail with 503 (a backend of the server is down) or a connection error are retried
 * with exponential backoff and full jitter ({@link RetryPolicy}); 4xx answers never are.
 * Retrying a push or a write is safe only because the server's online writes are idempotent: a
 * row whose event time is not newer than the stored one never overwrites it, so a write that
 * landed before its answer was lost is a no-op when sent again.
 *
 * <pre>{@code
 * RepastClient client = RepastClient.builder(URI.create("http://127.0.0.1:6566"))
 *     .token(System.getenv("REPAST_TOKEN"))
 *     .build();
 * OnlineResponse r = client.getOnlineFeatures(OnlineRequest.builder()
 *     .entities(Column.int64s("driver_id", 1001L))
 *     .features("driver_hourly_stats:conv_rate")
 *     .build());
 * List<Double> rates = r.column("conv_rate").float64s();
 * }</pre>
 */
public final class RepastClient {
  private static final ObjectMapper MAPPER = new ObjectMapper();

  private final String base;
  private final HttpClient http;
  private final String authorization;
  private final Duration timeout;
  private final RetryPolicy retry;
  private final Consumer<RetryEvent> onRetry;

  private RepastClient(Builder b) {
    String uri = b.baseUri.toString();
    this.base = uri.endsWith("/") ? uri.substring(0, uri.length() - 1) : uri;
    this.http =
        b.httpClient != null
            ? b.httpClient
            : HttpClient.newBuilder()
                // Cleartext HTTP/2 would be negotiated with an Upgrade header on every new
                // connection; the feature server speaks HTTP/1.1 with keep-alive.
                .version(HttpClient.Version.HTTP_1_1)
                .connectTimeout(b.connectTimeout)
                .build();
    this.authorization =
        b.token == null || b.token.isEmpty() ? null : "Bearer " + b.token;
    this.timeout = b.timeout;
    this.retry = b.retry;
    this.onRetry = b.onRetry;
  }

  public static Builder builder(URI baseUri) {
    return new Builder(baseUri);
  }

  /** Options of a {@link RepastClient}. */
  public static final class Builder {
    private final URI baseUri;
    private String token;
    private Duration timeout = Duration.ofSeconds(10);
    private Duration connectTimeout = Duration.ofSeconds(5);
    private RetryPolicy retry = RetryPolicy.DEFAULT;
    private Consumer<RetryEvent> onRetry;
    private HttpClient httpClient;

    private Builder(URI baseUri) {
      String scheme = Objects.requireNonNull(baseUri, "baseUri").getScheme();
      if (!"http".equals(scheme) && !"https".equals(scheme) || baseUri.getHost() == null) {
        throw new IllegalArgumentException(
            "base URI " + baseUri + " must be http(s)://host[:port][/prefix]");
      }
      this.baseUri = baseUri;
    }

    /** Sends {@code Authorization: Bearer <token>} (null or empty: none). */
    public Builder token(String token) {
      this.token = token;
      return this;
    }

    /** Bounds each call, retries and backoff included (default 10 s). */
    public Builder timeout(Duration timeout) {
      this.timeout = Objects.requireNonNull(timeout, "timeout");
      return this;
    }

    public Builder connectTimeout(Duration connectTimeout) {
      this.connectTimeout = Objects.requireNonNull(connectTimeout, "connectTimeout");
      return this;
    }

    public Builder retryPolicy(RetryPolicy retry) {
      this.retry = Objects.requireNonNull(retry, "retry");
      return this;
    }

    /** Called before each retry (to log or count them); must be thread-safe. */
    public Builder onRetry(Consumer<RetryEvent> listener) {
      this.onRetry = listener;
      return this;
    }

    /** Uses this HttpClient (a custom SSLContext, proxy, executor) instead of its own. */
    public Builder httpClient(HttpClient httpClient) {
      this.httpClient = httpClient;
      return this;
    }

    public RepastClient build() {
      return new RepastClient(this);
    }
  }

  /** Reads the latest feature values of each entity row. */
  public OnlineResponse getOnlineFeatures(OnlineRequest request) {
    byte[] body =
        json(
            g -> {
              g.writeStartObject();
              g.writeFieldName("entities");
              writeColumns(g, "entities", request.entities());
              if (request.featureService() != null) {
                g.writeStringField("feature_service", request.featureService());
              } else {
                g.writeArrayFieldStart("features");
                for (String f : request.features()) {
                  g.writeString(f);
                }
                g.writeEndArray();
              }
              if (request.fullFeatureNames()) {
                g.writeBooleanField("full_feature_names", true);
              }
              g.writeEndObject();
            });
    byte[] answer = call("POST", "/get-online-features", body).body();
    try {
      return OnlineResponse.parse(MAPPER, answer);
    } catch (IOException | RuntimeException e) {
      throw new RepastException("repast: /get-online-features: unexpected response body: " + e, e);
    }
  }

  /** Which stores a push writes. */
  public enum PushTarget {
    ONLINE("online"),
    OFFLINE("offline"),
    ONLINE_AND_OFFLINE("online_and_offline");

    private final String wire;

    PushTarget(String wire) {
      this.wire = wire;
    }
  }

  /**
   * Writes rows (as columns) to every view fed by the push source, online. The rows need every
   * join key and the batch source's timestamp field (and created-timestamp column, if any).
   * Rows whose event time is not newer than the stored one are skipped.
   */
  public void push(String pushSource, Column... columns) {
    push(pushSource, PushTarget.ONLINE, Arrays.asList(columns));
  }

  public void push(String pushSource, PushTarget to, List<Column> columns) {
    byte[] body = writeBody("push_source_name", pushSource, columns, to.wire);
    call("POST", "/push", body);
  }

  /** Writes rows into one view's online store; same columns and newer-wins rule as push. */
  public void writeToOnlineStore(String featureView, Column... columns) {
    call("POST", "/write-to-online-store", writeBody("feature_view_name", featureView, Arrays.asList(columns), null));
  }

  private static byte[] writeBody(String field, String name, List<Column> columns, String to) {
    if (columns.isEmpty()) {
      throw new IllegalArgumentException("a write needs at least one column");
    }
    return json(
        g -> {
          g.writeStartObject();
          g.writeStringField(field, name);
          g.writeFieldName("df");
          writeColumns(g, "df", columns);
          if (to != null) {
            g.writeStringField("to", to);
          }
          g.writeEndObject();
        });
  }

  /**
   * Runs (or with {@code async}, starts) a materialization. A retried call runs the range again,
   * which only rewrites the same rows.
   */
  public void materialize(MaterializeRequest r) {
    byte[] body =
        json(
            g -> {
              g.writeStartObject();
              if (r.disableEventTimestamp()) {
                g.writeBooleanField("disable_event_timestamp", true);
              } else {
                g.writeStringField("start_ts", instant(r.start()));
                g.writeStringField("end_ts", instant(r.end()));
              }
              writeViews(g, r.featureViews());
              g.writeEndObject();
            });
    List<String> query = new ArrayList<>();
    if (r.async()) {
      query.add("async=true");
    }
    if (r.force()) {
      query.add("force=true");
    }
    call("POST", "/materialize" + (query.isEmpty() ? "" : "?" + String.join("&", query)), body);
  }

  /** Materializes each view from its last materialized end (or now - ttl) to {@code end}. */
  public void materializeIncremental(Instant end, String... featureViews) {
    byte[] body =
        json(
            g -> {
              g.writeStartObject();
              g.writeStringField("end_ts", instant(end));
              writeViews(g, Arrays.asList(featureViews));
              g.writeEndObject();
            });
    call("POST", "/materialize-incremental", body);
  }

  /**
   * Asks whether the server and its backends answer. A probe, so never retried; an unhealthy
   * server (503) returns its Health with {@code isOk() == false}.
   */
  public Health health() {
    Answer a = send("GET", "/health", null, RetryPolicy.NONE, true);
    try {
      JsonNode n = MAPPER.readTree(a.body());
      if (a.status() >= 300 && (a.status() != 503 || !n.hasNonNull("status"))) {
        throw apiError("GET", "/health", a.status(), a.body());
      }
      List<String> problems = new ArrayList<>();
      n.path("problems").forEach(p -> problems.add(p.asText()));
      JsonNode refresh = n.path("registry_refresh_error");
      return new Health(
          n.path("status").asText(),
          n.path("project").asText(),
          n.path("registry_version").asText(),
          n.path("registry_age_seconds").asDouble(),
          refresh.isNull() || refresh.isMissingNode() ? null : refresh.asText(),
          List.copyOf(problems));
    } catch (IOException e) {
      throw apiError("GET", "/health", a.status(), a.body());
    }
  }

  // -- plumbing -------------------------------------------------------------------------------

  private static String instant(Instant t) {
    return t.truncatedTo(ChronoUnit.MICROS).toString();
  }

  private static void writeViews(JsonGenerator g, List<String> views) throws IOException {
    if (!views.isEmpty()) {
      g.writeArrayFieldStart("feature_views");
      for (String v : views) {
        g.writeString(v);
      }
      g.writeEndArray();
    }
  }

  private static void writeColumns(JsonGenerator g, String field, List<Column> columns)
      throws IOException {
    g.writeStartObject();
    for (Column c : columns) {
      if (c.size() != columns.get(0).size()) {
        throw new IllegalArgumentException(
            field + " column '" + c.name() + "' has " + c.size() + " rows, column '"
                + columns.get(0).name() + "' has " + columns.get(0).size());
      }
      g.writeFieldName(c.name());
      c.writeValues(g);
    }
    g.writeEndObject();
  }

  @FunctionalInterface
  private interface Writer {
    void write(JsonGenerator g) throws IOException;
  }

  private static byte[] json(Writer w) {
    try (ByteArrayBuilder out = new ByteArrayBuilder(1024);
        JsonGenerator g = MAPPER.getFactory().createGenerator(out)) {
      w.write(g);
      g.flush();
      return out.toByteArray();
    } catch (IOException e) {
      throw new RepastException("repast: could not encode the request: " + e, e);
    }
  }

  private record Answer(int status, byte[] body) {}

  private Answer call(String method, String path, byte[] body) {
    return send(method, path, body, retry, false);
  }

  /**
   * Sends with retries on 503 and connection errors, within the client's timeout. Returns the
   * 2xx answer, or with {@code anyStatus} whatever answer came.
   */
  private Answer send(String method, String path, byte[] body, RetryPolicy policy, boolean anyStatus) {
    long deadline = System.nanoTime() + timeout.toNanos();
    URI uri = URI.create(base + path);
    for (int attempt = 1; ; attempt++) {
      long remaining = deadline - System.nanoTime();
      if (remaining <= 0) {
        throw new RepastException(
            "repast: " + method + " " + path + ": timed out after " + timeout + " (" + (attempt - 1) + " attempt(s))");
      }
      HttpRequest.Builder rb =
          HttpRequest.newBuilder(uri).timeout(Duration.ofNanos(remaining)).header("Accept", "application/json");
      if (authorization != null) {
        rb.header("Authorization", authorization);
      }
      if (body != null) {
        rb.header("Content-Type", "application/json").method(method, HttpRequest.BodyPublishers.ofByteArray(body));
      } else {
        rb.method(method, HttpRequest.BodyPublishers.noBody());
      }
      RuntimeException failure;
      Throwable cause;
      try {
        HttpResponse<byte[]> resp = http.send(rb.build(), HttpResponse.BodyHandlers.ofByteArray());
        int status = resp.statusCode();
        if (status < 300 || (anyStatus && status != 503)) {
          return new Answer(status, resp.body());
        }
        RepastApiException e = apiError(method, path, status, resp.body());
        if (!e.isTemporary()) {
          throw e;
        }
        if (anyStatus && attempt > policy.maxRetries()) {
          return new Answer(status, resp.body());
        }
        failure = e;
        cause = e;
      } catch (HttpConnectTimeoutException e) {
        failure = new RepastConnectionException(method, path, attempt, e);
        cause = e;
      } catch (HttpTimeoutException e) {
        // The call's own deadline: the caller's decision, never retried.
        throw new RepastException("repast: " + method + " " + path + ": timed out after " + timeout, e);
      } catch (IOException e) {
        failure = new RepastConnectionException(method, path, attempt, e);
        cause = e;
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
        throw new RepastException("repast: " + method + " " + path + ": interrupted", e);
      }
      if (attempt > policy.maxRetries()) {
        throw failure;
      }
      long wait = policy.backoffNanos(attempt, ThreadLocalRandom.current());
      if (onRetry != null) {
        onRetry.accept(new RetryEvent(method, path, attempt, Duration.ofNanos(wait), cause));
      }
      try {
        TimeUnit.NANOSECONDS.sleep(Math.min(wait, Math.max(0, deadline - System.nanoTime())));
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
        throw new RepastException("repast: " + method + " " + path + ": interrupted", e);
      }
    }
  }

  private static RepastApiException apiError(String method, String path, int status, byte[] body) {
    String text = new String(body, StandardCharsets.UTF_8);
    try {
      JsonNode n = MAPPER.readTree(body);
      // Errors come in the shape of Feast's feature server: a JSON string holding the
      // JSON document (so Feast's Python client reads them too).
      if (n != null && n.isTextual()) {
        n = MAPPER.readTree(n.asText());
      }
      if (n != null && n.hasNonNull("error")) {
        List<String> views = new ArrayList<>();
        n.path("feature_views").forEach(v -> views.add(v.asText()));
        if (n.has("detail")) {
          return new RepastApiException(
              method, path, status, n.get("error").asText(), n.get("detail").asText(), List.copyOf(views), null);
        }
        // The 409 of /materialize carries its message in `error` and has no `detail`.
        return new RepastApiException(
            method, path, status, "Conflict", n.get("error").asText(), List.copyOf(views), null);
      }
    } catch (IOException e) {
      // Not JSON (a proxy's page): kept as the raw body below.
    }
    return new RepastApiException(method, path, status, null, null, List.of(), text);
  }
}
