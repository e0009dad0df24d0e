package dev.repast.client;

/** How a value was found: Feast's {@code FieldStatus}. */
public enum FieldStatus {
  INVALID,
  PRESENT,
  NULL_VALUE,
  NOT_FOUND,
  OUTSIDE_MAX_AGE;

  static FieldStatus parse(String name) {
    switch (name) {
      case "PRESENT":
        return PRESENT;
      case "NOT_FOUND":
        return NOT_FOUND;
      case "OUTSIDE_MAX_AGE":
        return OUTSIDE_MAX_AGE;
      case "NULL_VALUE":
        return NULL_VALUE;
      case "INVALID":
        return INVALID;
      default:
        throw new IllegalArgumentException("unknown status '" + name + "'");
    }
  }
}
