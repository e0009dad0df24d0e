package dev.repast.client;

import java.time.Duration;
import java.util.Objects;

/**
 * How often, and after how long a wait, a call that failed with 503 or a connection error is
 * repeated. The wait before retry n (from 1) is uniformly random in [0, min(maxBackoff,
 * initialBackoff * 2^(n-1))] ("full jitter"), so clients that failed together do not return
 * together. 4xx answers are never retried.
 */
public record RetryPolicy(int maxRetries, Duration initialBackoff, Duration maxBackoff) {
  /** 3 retries, from 100 ms up to 2 s. */
  public static final RetryPolicy DEFAULT =
      new RetryPolicy(3, Duration.ofMillis(100), Duration.ofSeconds(2));

  /** No retries. */
  public static final RetryPolicy NONE = new RetryPolicy(0, Duration.ZERO, Duration.ZERO);

  public RetryPolicy {
    if (maxRetries < 0) {
      throw new IllegalArgumentException("maxRetries must be >= 0");
    }
    Objects.requireNonNull(initialBackoff, "initialBackoff");
    Objects.requireNonNull(maxBackoff, "maxBackoff");
  }

  long backoffNanos(int attempt, java.util.random.RandomGenerator random) {
    long ceiling = maxBackoff.toNanos();
    int shift = attempt - 1;
    if (shift < 30) {
      long d = initialBackoff.toNanos() << shift;
      if (d > 0 && d < ceiling) {
        ceiling = d;
      }
    }
    return ceiling <= 0 ? 0 : random.nextLong(ceiling + 1);
  }
}
