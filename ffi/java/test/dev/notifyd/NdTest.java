package dev.notifyd;

import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.atomic.AtomicInteger;

/** The Java binding end to end; prints "N passed, N failed" last (no JUnit without Maven). */
public final class NdTest {
  private static int passed;
  private static int failed;

  private static void check(boolean ok, String what) {
    if (ok) {
      passed++;
    } else {
      failed++;
      System.err.println("FAILED: " + what);
    }
  }

  private static int code(Runnable r) {
    try {
      r.run();
      return 0;
    } catch (NdException e) {
      return e.code();
    }
  }

  private static byte[] b(String s) {
    return s.getBytes(StandardCharsets.UTF_8);
  }

  static final String BODY =
      "{\"partnerId\":\"P1\",\"paymentId\":\"J-PAY1\",\"paymentRequestId\":\"J-R1\","
          + "\"paymentAmount\":{\"currency\":\"USD\",\"value\":\"100\"},\"paymentStatus\":\"SUCCESS\"}";

  public static void main(String[] args) throws Exception {
    check(Notifyd.version().matches("\\d+\\.\\d+\\.\\d+"), "version");
    check(Notifyd.resultString(0).equals("ok"), "resultString");

    Notifyd.validate("notifyPayment", b(BODY));
    passed++;
    try {
      Notifyd.validate("notifyPayment", b("{\"partnerId\":\"P1\"}"));
      check(false, "invalid notification throws");
    } catch (NdException e) {
      check(e.code() == 201 && e.getMessage().contains("is required"), "validation message: " + e.getMessage());
      check(!e.isRetryable(), "validation errors are not retryable");
    }
    check(code(() -> Notifyd.validate("refund", b(BODY))) == 200, "unknown api");
    // Messages echo the sender's keys. U+1F600 is a 4-byte UTF-8 sequence, which JNI's
    // NewStringUTF (modified UTF-8) does not accept; the message must still come through intact.
    String odd = "\u00e9\uD83D\uDE00";
    try {
      Notifyd.validate("notifyPayment", b("{\"" + odd + "\":\"1\"}"));
      check(false, "unknown key throws");
    } catch (NdException e) {
      check(e.getMessage().startsWith(odd + ": is not a field"), "non-BMP key in message: " + e.getMessage());
    }
    check(new String(Notifyd.encode("notifyPayment", b(BODY)), StandardCharsets.UTF_8).equals(BODY), "encode");
    String big = BODY.replace("\"P1\"", "\"" + "P".repeat(32) + "\"");
    check(Notifyd.encode("notifyPayment", b(big)).length == big.length(), "encode grows its buffer");

    byte[] key;
    try (NdEnvelope e = NdEnvelope.of("notifyPayment", "http://127.0.0.1:9/notify", null, b(BODY));
        NdEnvelope p = NdEnvelope.parse(
            b("{\"api\":\"notifyPayment\",\"url\":\"http://127.0.0.1:9/notify\",\"body\":" + BODY + "}"))) {
      key = e.idempotency();
      check(key.length == 32, "idempotency is 32 bytes");
      check(java.util.Arrays.equals(key, p.idempotency()), "parts and parse agree");
      check(java.util.Arrays.equals(e.encode(), b(BODY)), "envelope encode");
    }
    check(code(() -> NdEnvelope.of("notifyPayment", "ftp://x/", null, b(BODY))) == 201, "bad url");
    NdEnvelope closed = NdEnvelope.parse(
        b("{\"api\":\"notifyPayment\",\"url\":\"http://127.0.0.1:9/notify\",\"body\":" + BODY + "}"));
    closed.close();
    closed.close(); // idempotent
    try {
      closed.encode();
      check(false, "use after close throws");
    } catch (IllegalStateException expected) {
      passed++;
    }

    try (NdIdempotencyTable t = new NdIdempotencyTable(1024, 60_000)) {
      IdemCheck first = t.reserve(key, 1000);
      check(first.verdict() == IdemCheck.NEW && first.pending() && first.id().length() == 26, "reserve new");
      IdemCheck again = t.reserve(key, 1001);
      check(again.verdict() == IdemCheck.DUPLICATE && again.id().equals(first.id()), "duplicate");
      check(t.confirm(key, first), "confirm");
      check(!t.release(key, first), "release after confirm");
      check(t.check(key, 1000 + 60_000).verdict() == IdemCheck.UNKNOWN, "expired");
      check(code(() -> t.reserve(new byte[3], 1)) == 103, "short key");
      // Java threads share the table: exactly one of them wins each key.
      AtomicInteger wins = new AtomicInteger();
      Thread[] threads = new Thread[4];
      for (int i = 0; i < threads.length; i++) {
        threads[i] = new Thread(() -> {
          for (int k = 0; k < 500; k++) {
            byte[] kk = new byte[32];
            kk[15] = (byte) k;
            kk[14] = (byte) (k >> 8);
            kk[0] = 7;
            if (t.reserve(kk, 5).verdict() == IdemCheck.NEW) wins.incrementAndGet();
          }
        });
        threads[i].start();
      }
      for (Thread th : threads) th.join();
      check(wins.get() == 500, "one winner per key across threads: " + wins.get());
      check(t.size() == 501, "size");
    }
    check(code(() -> new NdIdempotencyTable(0, 1)) == 103, "capacity 0");

    Ack done = Notifyd.classify("notifyPayment", 200,
        -1, b("{\"result\":{\"resultStatus\":\"S\",\"resultCode\":\"SUCCESS\"}}"),
        Ack.SIGNATURE_NOT_CHECKED, Ack.MODE_OPTIONAL);
    check(done.action() == Ack.DONE && done.isFinal() && done.code().equals("SUCCESS"), "classify S");
    Ack rejected = Notifyd.classify("notifyPayment", 200, -1,
        b("{\"result\":{\"resultStatus\":\"F\",\"resultCode\":\"PROCESS_FAIL\",\"resultMessage\":\"no " + odd + "\"}}"),
        Ack.SIGNATURE_NOT_CHECKED, Ack.MODE_OPTIONAL);
    check(rejected.action() == Ack.PERM_FAIL && rejected.message().equals("no " + odd), "non-BMP ack message: " + rejected.message());
    Ack throttled = Notifyd.classify("notifyPayment", 429, 5000, null, Ack.SIGNATURE_NOT_CHECKED, Ack.MODE_OFF);
    check(throttled.action() == Ack.BACKOFF_HARD && throttled.retryAfterMs() == 5000, "classify 429");
    check(Notifyd.classifyFailure("notifyVoid", Ack.OUTCOME_TIMEOUT).reason().equals("timeout"), "timeout");

    try (NdRetryPolicy p = NdRetryPolicy.alipayDefault()) {
      check(p.nextDelayMs(1, 0, 0.5) == 120_000, "alipay delay");
      check(p.nextDelayMs(8, 0, 0.5) == -1, "exhausted");
    }
    check(code(() -> NdRetryPolicy.exponential(1000, 0.5, 10_000, 5, 0, 0)) == 404, "bad multiplier");

    check(Notifyd.requestUri("https://h/v1/x?a=1#f").equals("/v1/x?a=1"), "requestUri");
    Path dir = Path.of(System.getenv("ND_SIGVEC_DIR"));
    byte[] content = Files.readAllBytes(dir.resolve("req_content.bin"));
    String text = new String(content, StandardCharsets.UTF_8);
    int nl = text.indexOf('\n');
    int dot1 = text.indexOf('.', nl);
    int bodyAt = text.indexOf(".{", dot1) + 1;
    String clientId = text.substring(nl + 1, dot1);
    String time = text.substring(dot1 + 1, bodyAt - 1);
    byte[] body = b(text.substring(bodyAt));
    try (NdSigning.SigningKey sk = new NdSigning.SigningKey(Files.readAllBytes(dir.resolve("test_private_key_pkcs8.pem")));
        NdSigning.VerifyingKey vk = new NdSigning.VerifyingKey(Files.readAllBytes(dir.resolve("test_public_key_x509.pem")))) {
      String header = sk.sign(1, "POST", "/v1/payments/notifyPayment", clientId, time, body);
      check(header.equals(System.getenv("ND_REQ_SIGNATURE")), "signature matches the vector");
      check(vk.verify("POST", "/v1/payments/notifyPayment", clientId, time, body, header), "verify");
      check(!vk.verify("POST", "/v1/payments/notifyPayment", clientId, time, b("{}"), header), "tampered");
      check(code(() -> vk.verify("POST", "/", clientId, time, body, "algorithm=ECC224, signature=x")) == 523,
          "unsupported algorithm");
    }
    check(code(() -> new NdSigning.SigningKey(b("nope"))) == 500, "bad pem");

    String envelope = "{\"api\":\"notifyPayment\",\"url\":\"http://127.0.0.1:9/notify\",\"body\":" + BODY + "}";
    try (NdClient tcp = NdClient.tcp(System.getenv("ND_TEST_ADDR"), null, 5000);
        NdClient unix = NdClient.unix(System.getenv("ND_TEST_SOCK"), null, 5000)) {
      SubmitResult r = tcp.submit(b(envelope));
      check(r.httpStatus() == 200 && r.resultStatus().equals("S") && !r.duplicate(), "submit: " + r.resultMessage());
      SubmitResult d = unix.submit(b(envelope));
      check(d.duplicate() && d.notificationId().equals(r.notificationId()), "duplicate over the Unix socket");
      SubmitResult bad = tcp.submit(b("{\"api\":\"notifyPayment\"}"));
      check(bad.httpStatus() == 400 && bad.resultCode().equals("PARAM_ILLEGAL"), "invalid submit");
      SubmitResult oddKey = tcp.submit(b(envelope.replace("{\"partnerId\"", "{\"" + odd + "\":\"1\",\"partnerId\"")));
      check(oddKey.httpStatus() == 400 && oddKey.resultMessage().contains(odd + ": is not a field"),
          "non-BMP submit message: " + oddKey.resultMessage());
      SubmitResult batch = unix.submitBatch(b("{\"notifications\":[" + envelope + "]}"));
      check(batch.httpStatus() == 200 && batch.batchItems() == 1 && batch.batchAccepted() == 1, "batch");
      check(new String(batch.body(), StandardCharsets.UTF_8).contains("\"results\""), "batch body");
    }
    try (NdClient refused = NdClient.tcp("127.0.0.1:1", null, 1000)) {
      try {
        refused.submit(b(envelope));
        check(false, "refused connection throws");
      } catch (NdException e) {
        check(e.code() == 601 && e.isRetryable(), "connect error is retryable");
      }
    }

    System.out.println(passed + " passed, " + failed + " failed");
    System.exit(failed == 0 ? 0 : 1);
  }
}
