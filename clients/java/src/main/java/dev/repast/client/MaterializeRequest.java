package dev.repast.client;

import java.time.Instant;
import java.util.List;

/**
 * A materialize call: load the latest row per entity with an event time in [start, end] into
 * the online store, for {@code featureViews} (all when empty). {@code async} returns once the
 * server accepted the job (202); {@code force} starts it even if another job holds the views.
 */
public record MaterializeRequest(
    Instant start,
    Instant end,
    List<String> featureViews,
    boolean disableEventTimestamp,
    boolean async,
    boolean force) {

  public MaterializeRequest {
    featureViews = featureViews == null ? List.of() : List.copyOf(featureViews);
  }

  /** Every view, rows with an event time in [start, end], synchronously. */
  public static MaterializeRequest of(Instant start, Instant end, String... featureViews) {
    return new MaterializeRequest(start, end, List.of(featureViews), false, false, false);
  }
}
