package dev.notifyd;

/** notifyd's answer to a submit (CONTRACT.md §2); batch counts are 0 for a single submit. */
public record SubmitResult(
    int httpStatus,
    String resultStatus,
    String resultCode,
    String resultMessage,
    String notificationId,
    boolean duplicate,
    int batchItems,
    int batchAccepted,
    byte[] body) {}
