// STL-heavy code: std::map and std::unordered_map keyed by strings that do
// not fit the small-string buffer, vectors that grow, sorting, erasing.
// Everything goes through operator new/delete.
// Usage: stl [ROUNDS=12]
#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <string>
#include <unordered_map>
#include <vector>

int main(int argc, char** argv) {
  int rounds = argc > 1 ? std::atoi(argv[1]) : 12;
  const int n = 60000;
  uint64_t sum = 0;
  for (int r = 0; r < rounds; ++r) {
    std::map<std::string, std::vector<int>> index;
    std::unordered_map<std::string, std::string> attrs;
    for (int i = 0; i < n; ++i) {
      int k = static_cast<int>((static_cast<uint64_t>(i) * 7919u + r) % (n / 3));
      std::string key = "customer-record-" + std::to_string(k) + "-region-" + std::to_string(k % 17);
      index[key].push_back(i);
      attrs[key + "/name"] = std::string(24 + k % 40, static_cast<char>('a' + k % 26));
    }
    std::vector<std::string> keys;
    keys.reserve(index.size());
    for (auto& [k, v] : index) {
      keys.push_back(k);
      sum += v.size();
    }
    std::sort(keys.begin(), keys.end(), [](const std::string& a, const std::string& b) {
      return a.size() != b.size() ? a.size() < b.size() : a > b;
    });
    for (std::size_t i = 0; i < keys.size(); i += 2) {
      index.erase(keys[i]);
      attrs.erase(keys[i] + "/name");
    }
    for (auto& [k, v] : attrs) sum += v.size() + static_cast<unsigned char>(k[17]);
    std::vector<std::vector<double>> matrix;
    for (int i = 0; i < 2000; ++i) {
      std::vector<double> row;
      for (int j = 0; j < 20 + i % 50; ++j) row.push_back(i * 0.5 + j);
      matrix.push_back(std::move(row));
    }
    for (auto& row : matrix) sum += static_cast<uint64_t>(row.back());
  }
  std::printf("checksum=%llu\n", static_cast<unsigned long long>(sum));
  return 0;
}
