package dev.repast.client;

import java.util.List;

/**
 * A non-2xx answer. {@link #error()} and {@link #detail()} are the server's {@code error} and
 * {@code detail}; {@link #body()} is the raw body when it had another shape.
 */
public final class RepastApiException extends RepastException {
  private static final long serialVersionUID = 1L;

  private final String method;
  private final String path;
  private final int status;
  private final String error;
  private final String detail;
  private final List<String> featureViews;
  private final String body;

  RepastApiException(
      String method,
      String path,
      int status,
      String error,
      String detail,
      List<String> featureViews,
      String body) {
    super(
        "repast: "
            + method
            + " "
            + path
            + ": "
            + status
            + " "
            + (error == null ? "" : error)
            + ": "
            + (detail != null ? detail : body));
    this.method = method;
    this.path = path;
    this.status = status;
    this.error = error;
    this.detail = detail;
    this.featureViews = featureViews;
    this.body = body;
  }

  public String method() {
    return method;
  }

  public String path() {
    return path;
  }

  /** The HTTP status. */
  public int status() {
    return status;
  }

  /** The server's error kind, e.g. {@code FeatureNotFoundError}; null if the body had none. */
  public String error() {
    return error;
  }

  /** The server's message. */
  public String detail() {
    return detail;
  }

  /** The views already being materialized, on a 409 from /materialize; else empty. */
  public List<String> featureViews() {
    return featureViews;
  }

  /** The raw body when it was not the server's error JSON; else null. */
  public String body() {
    return body;
  }

  /**
   * Whether the same call may succeed later: true for 503 (a backend of the server is down),
   * the only status the client retries.
   */
  public boolean isTemporary() {
    return status == 503;
  }
}
