package dev.repast.client;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/**
 * A getOnlineFeatures call: entity rows as columns (all of one length) and either feature
 * references ("view:feature") or a feature service.
 *
 * <pre>{@code
 * OnlineRequest.builder()
 *     .entities(Column.int64s("driver_id", 1001L, 1002L))
 *     .features("driver_hourly_stats:conv_rate", "driver_hourly_stats:avg_daily_trips")
 *     .build();
 * }</pre>
 */
public record OnlineRequest(
    List<Column> entities, List<String> features, String featureService, boolean fullFeatureNames) {

  public OnlineRequest {
    entities = List.copyOf(entities);
    features = features == null ? List.of() : List.copyOf(features);
  }

  public static Builder builder() {
    return new Builder();
  }

  public static final class Builder {
    private final List<Column> entities = new ArrayList<>();
    private final List<String> features = new ArrayList<>();
    private String featureService;
    private boolean fullFeatureNames;

    public Builder entities(Column... columns) {
      entities.addAll(Arrays.asList(columns));
      return this;
    }

    public Builder features(String... refs) {
      features.addAll(Arrays.asList(refs));
      return this;
    }

    public Builder features(List<String> refs) {
      features.addAll(refs);
      return this;
    }

    /** A feature service; wins over {@link #features}. */
    public Builder featureService(String name) {
      featureService = name;
      return this;
    }

    /** Name the columns "view__feature" instead of "feature". */
    public Builder fullFeatureNames(boolean full) {
      fullFeatureNames = full;
      return this;
    }

    public OnlineRequest build() {
      return new OnlineRequest(entities, features, featureService, fullFeatureNames);
    }
  }
}
