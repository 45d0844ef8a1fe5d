// The platform's delivery of an edge model file, as test/edge-deployment.test.ts sees it on
// the wire: base64 chunks on devices/{id}/model/set with the file's version and checksum.
#pragma once

#include <algorithm>
#include <cstdint>
#include <string>
#include <vector>

#include "edge_model.hpp"
#include "json.hpp"

namespace es_test {

inline std::string base64(const uint8_t* data, size_t n) {
  static const char* abc = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  for (size_t i = 0; i < n; i += 3) {
    uint32_t v = static_cast<uint32_t>(data[i]) << 16;
    if (i + 1 < n) v |= static_cast<uint32_t>(data[i + 1]) << 8;
    if (i + 2 < n) v |= data[i + 2];
    out += abc[(v >> 18) & 63];
    out += abc[(v >> 12) & 63];
    out += i + 1 < n ? abc[(v >> 6) & 63] : '=';
    out += i + 2 < n ? abc[v & 63] : '=';
  }
  return out;
}

inline std::string checksumOf(const std::vector<uint8_t>& file) {
  return es::crc32Hex(es::crc32(file.data() + es::kEdgeHeaderBytes, file.size() - es::kEdgeHeaderBytes));
}

// A file in chunks of `chunk` bytes; `size` < 0 announces the file's own size.
inline std::vector<std::string> chunksOf(const std::vector<uint8_t>& file, const std::string& version,
                                         const std::string& checksum, size_t chunk = 300,
                                         double size = -1) {
  std::vector<std::string> out;
  for (size_t at = 0; at < file.size(); at += chunk) {
    const size_t n = std::min(chunk, file.size() - at);
    es::JsonWriter w;
    w.beginObject()
        .key("version").value(version)
        .key("checksum").value(checksum)
        .key("size").value(size < 0 ? static_cast<double>(file.size()) : size)
        .key("offset").value(static_cast<unsigned long long>(at))
        .key("data").value(base64(file.data() + at, n))
        .endObject();
    out.push_back(w.str());
  }
  return out;
}

}  // namespace es_test
