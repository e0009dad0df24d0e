package dev.repast.client;

import java.time.Duration;

/**
 * A failed attempt about to be retried: the attempt number (from 1), the wait before the
 * next one and why it failed (a {@link RepastApiException} with status 503, or the I/O error).
 */
public record RetryEvent(String method, String path, int attempt, Duration backoff, Throwable cause) {}
