// slow_resolver.cpp — an LD_PRELOAD library for tests: getaddrinfo() of the
// name "hang.slow-resolver.test" waits 60 s and fails, as it does when the
// system's resolver never answers. Tests may only talk to 127.0.0.1, and a
// resolver that never answers needs a DNS server that does not either: this
// is the one fault the suite injects rather than produces. Every other call
// (and any AI_NUMERICHOST call, which never asks a resolver) goes to the
// real getaddrinfo.
#include <dlfcn.h>
#include <netdb.h>

#include <cerrno>
#include <cstring>
#include <ctime>

extern "C" int getaddrinfo(const char* node, const char* service, const addrinfo* hints, addrinfo** res) {
  bool numeric_only = hints && (hints->ai_flags & AI_NUMERICHOST);
  if (node && !numeric_only && std::strcmp(node, "hang.slow-resolver.test") == 0) {
    timespec left{60, 0};
    while (nanosleep(&left, &left) == -1 && errno == EINTR) {
    }
    return EAI_AGAIN;
  }
  using Fn = int (*)(const char*, const char*, const addrinfo*, addrinfo**);
  static Fn real = reinterpret_cast<Fn>(dlsym(RTLD_NEXT, "getaddrinfo"));
  return real(node, service, hints, res);
}
