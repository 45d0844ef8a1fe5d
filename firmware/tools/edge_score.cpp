// Scores readings with an edge model exactly as the device does, for the TypeScript/C++
// parity test: `edge-score MODEL_FILE < readings`, one "time_ms value" pair per line in,
// one "score anomalous reason" line per reading out (scores with 17 significant digits).
#include <cstdio>
#include <cstdlib>
#include <vector>

#include "edge_detector.hpp"
#include "edge_model.hpp"

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: edge-score MODEL_FILE < readings\n");
    return 2;
  }
  std::FILE* file = std::fopen(argv[1], "rb");
  if (!file) {
    std::fprintf(stderr, "cannot open %s\n", argv[1]);
    return 2;
  }
  std::vector<uint8_t> bytes;
  int c;
  while ((c = std::fgetc(file)) != EOF) bytes.push_back(static_cast<uint8_t>(c));
  std::fclose(file);
  es::EdgeModel model;
  es::EdgeModelError error = es::parseEdgeModel(bytes.data(), bytes.size(), model);
  if (error != es::EdgeModelError::None) {
    std::printf("error %s\n", es::edgeModelErrorName(error));
    return 1;
  }
  es::EdgeDetector detector(model);
  double timeMs, value;
  while (std::scanf("%lf %lf", &timeMs, &value) == 2) {
    es::EdgeScore s = detector.score(timeMs, value);
    std::printf("%.17g %d %s\n", s.score, s.anomalous ? 1 : 0, s.reason ? s.reason : "-");
  }
  return 0;
}
