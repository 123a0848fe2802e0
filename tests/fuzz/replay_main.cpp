// replay_main.cpp — runs a fuzz target without libFuzzer: every file named
// on the command line (directories are walked) goes through
// LLVMFuzzerTestOneInput once. The default build links the targets with this
// driver and CTest replays the committed seed corpus (tests/fuzz/corpus/) and
// any crash file saved by a fuzzing run, so every input that ever found a bug
// stays a regression test. scripts/fuzz.sh builds the same targets with
// clang's libFuzzer instead for the long coverage-guided runs.
#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);
extern "C" __attribute__((weak)) int LLVMFuzzerInitialize(int* argc, char*** argv);

namespace {
int run_file(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  if (!in) {
    std::fprintf(stderr, "cannot read %s\n", p.c_str());
    return 1;
  }
  std::vector<char> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  // A private heap copy sized exactly: ASan then catches any read past the end.
  auto* data = new uint8_t[bytes.size() ? bytes.size() : 1];
  std::copy(bytes.begin(), bytes.end(), data);
  LLVMFuzzerTestOneInput(data, bytes.size());
  delete[] data;
  return 0;
}
}  // namespace

int main(int argc, char** argv) {
  if (LLVMFuzzerInitialize) LLVMFuzzerInitialize(&argc, &argv);
  size_t files = 0;
  int failures = 0;
  for (int i = 1; i < argc; ++i) {
    std::filesystem::path arg(argv[i]);
    if (std::filesystem::is_directory(arg)) {
      std::vector<std::filesystem::path> paths;
      for (const auto& e : std::filesystem::recursive_directory_iterator(arg))
        if (e.is_regular_file()) paths.push_back(e.path());
      std::sort(paths.begin(), paths.end());
      for (const auto& p : paths) failures += run_file(p), ++files;
    } else {
      failures += run_file(arg), ++files;
    }
  }
  std::printf("%s: %zu inputs replayed, %d unreadable\n", argc > 0 ? argv[0] : "fuzz", files, failures);
  return failures == 0 && files > 0 ? 0 : 1;
}
