package dev.repast.client;

/**
 * Any failure of a call: {@link RepastApiException} for an error answer, {@link
 * RepastConnectionException} for no answer; the base class itself for an answer the client
 * could not read, an interrupted call, or a request it refused to send.
 */
public class RepastException extends RuntimeException {
  private static final long serialVersionUID = 1L;

  public RepastException(String message) {
    super(message);
  }

  public RepastException(String message, Throwable cause) {
    super(message, cause);
  }
}
