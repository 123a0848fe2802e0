// url_redact_test.cpp — secrets in NATS URLs never reach a log line.
#include "url_redact.h"

#include <doctest/doctest.h>

using tickfan::redact_url;

TEST_CASE("redact_url hides a URL's password or token and keeps the rest") {
  CHECK(redact_url("nats://alice:s3cret@10.0.0.1:4222") == "nats://alice:***@10.0.0.1:4222");
  CHECK(redact_url("nats://mytoken@host:4222") == "nats://***@host:4222");
  CHECK(redact_url("tls://bob:p@ss:w@rd@host") == "tls://bob:***@host");  // the last @ ends the userinfo
  CHECK(redact_url("nats://127.0.0.1:4222") == "nats://127.0.0.1:4222");
  CHECK(redact_url("127.0.0.1:4222") == "127.0.0.1:4222");
  CHECK(redact_url("nats://host:4222/path@x") == "nats://host:4222/path@x");  // '@' after the authority
  CHECK(redact_url("user:pw@host:4222") == "user:***@host:4222");            // no scheme
  CHECK(redact_url("") == "");
  CHECK(tickfan::redact_urls({"nats://a:pw@h1:4222", "nats://h2:4222"}) == "nats://a:***@h1:4222,nats://h2:4222");
}
