package dev.repast.client;

/** A call that got no HTTP answer (refused, reset, closed early) on every attempt. */
public final class RepastConnectionException extends RepastException {
  private static final long serialVersionUID = 1L;

  private final int attempts;

  RepastConnectionException(String method, String path, int attempts, Throwable cause) {
    super(
        "repast: " + method + " " + path + ": no answer after " + attempts + " attempt(s): " + cause,
        cause);
    this.attempts = attempts;
  }

  public int attempts() {
    return attempts;
  }
}
