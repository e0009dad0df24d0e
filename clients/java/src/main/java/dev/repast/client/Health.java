package dev.repast.client;

import java.util.List;

/** The server's /health answer; {@code status} is "ok" or "unhealthy". */
public record Health(
    String status,
    String project,
    String registryVersion,
    double registryAgeSeconds,
    String registryRefreshError,
    List<String> problems) {
  public boolean isOk() {
    return "ok".equals(status);
  }
}
