// Real JVM work for the runtime e2e test, run with the single-file source
// launcher (`java JavaWork.java`: compiled in-process): collections,
// strings, hashing, threads, a direct ByteBuffer. Deterministic output.
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;

public class JavaWork {
  public static void main(String[] args) throws Exception {
    int rounds = args.length > 0 ? Integer.parseInt(args[0]) : 20;
    MessageDigest md = MessageDigest.getInstance("SHA-256");
    List<byte[]> kept = new ArrayList<>();
    for (int r = 0; r < rounds; r++) {
      Map<String, List<Integer>> m = new HashMap<>();
      for (int i = 0; i < 5000; i++) {
        List<Integer> l = new ArrayList<>();
        for (int k = 0; k < i % 9; k++) l.add(i * k + r);
        m.put("key" + i, l);
      }
      StringBuilder sb = new StringBuilder();
      for (Map.Entry<String, List<Integer>> e : new TreeMap<>(m).entrySet()) sb.append(e.getKey()).append(e.getValue());
      md.update(sb.toString().getBytes(StandardCharsets.UTF_8));
      kept.add(new byte[1024 * (r % 4 + 1)]);
    }
    ByteBuffer direct = ByteBuffer.allocateDirect(1 << 20);  // native memory, through malloc
    for (int i = 0; i < direct.capacity(); i += 4096) direct.put(i, (byte) i);
    md.update(direct.get(4096 * 3));
    ExecutorService pool = Executors.newFixedThreadPool(4);
    List<Future<Integer>> fs = new ArrayList<>();
    for (int t = 0; t < 16; t++) {
      final int id = t;
      fs.add(pool.submit(() -> {
        int s = 0;
        for (int i = 0; i < 100000; i++) s += Integer.toString(i * id).hashCode();
        return s;
      }));
    }
    long sum = 0;
    for (Future<Integer> f : fs) sum += f.get();
    pool.shutdown();
    StringBuilder hex = new StringBuilder();
    for (byte b : md.digest()) hex.append(String.format("%02x", b));
    System.out.println("java work digest " + hex);
    System.out.println("threads sum " + sum);
    int total = 0;
    for (byte[] b : kept) total += b.length;
    System.out.println("kept " + total + " bytes");
  }
}
