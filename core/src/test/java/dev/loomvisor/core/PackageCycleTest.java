package dev.loomvisor.core;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.lang.classfile.ClassFile;
import java.lang.classfile.constantpool.ClassEntry;
import java.net.URISyntaxException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Deque;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;
import java.util.TreeSet;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;

/**
 * The package graph of core's main classes, read from their constant pools as {@code jdeps -verbose:package}
 * reads them: the kernel ({@code core}) is the bottom layer and the worker SPI ({@code core.worker}) sits on
 * top of it, so no two packages reach each other. Packages named {@code testing} are left out: they are
 * fixtures, which the build keeps out of the product on their own terms.
 */
class PackageCycleTest {

    private static final String ROOT = "dev.loomvisor.core";

    /** Package -> the packages of core it refers to. */
    static Map<String, Set<String>> packageGraph() throws IOException, URISyntaxException {
        Path classes = Path.of(Kernel.class.getProtectionDomain().getCodeSource().getLocation().toURI());
        Map<String, Set<String>> graph = new TreeMap<>();
        List<Path> files;
        try (Stream<Path> s = Files.walk(classes)) {
            files = s.filter(p -> p.toString().endsWith(".class")).toList();
        }
        for (Path f : files) {
            var model = ClassFile.of().parse(f);
            String from = packageOf(model.thisClass().asInternalName());
            if (excluded(from)) {
                continue;
            }
            Set<String> out = graph.computeIfAbsent(from, k -> new TreeSet<>());
            for (var entry : model.constantPool()) {
                if (entry instanceof ClassEntry ce) {
                    String name = ce.asInternalName();
                    while (name.startsWith("[")) {
                        name = name.substring(1);
                    }
                    if (name.startsWith("L") && name.endsWith(";")) {
                        name = name.substring(1, name.length() - 1);
                    }
                    String to = packageOf(name);
                    if (to.startsWith(ROOT) && !to.equals(from) && !excluded(to)) {
                        out.add(to);
                    }
                }
            }
        }
        return graph;
    }

    private static String packageOf(String internalName) {
        int slash = internalName.lastIndexOf('/');
        return slash < 0 ? "" : internalName.substring(0, slash).replace('/', '.');
    }

    private static boolean excluded(String pkg) {
        return pkg.endsWith(".testing") || pkg.contains(".testing.");
    }

    /** The packages of each strongly connected component with more than one package (Tarjan). */
    static List<Set<String>> cycles(Map<String, Set<String>> graph) {
        Map<String, Integer> index = new HashMap<>();
        Map<String, Integer> low = new HashMap<>();
        Deque<String> stack = new ArrayDeque<>();
        Set<String> onStack = new TreeSet<>();
        List<Set<String>> out = new ArrayList<>();
        int[] counter = {0};
        for (String v : graph.keySet()) {
            if (!index.containsKey(v)) {
                strongConnect(v, graph, index, low, stack, onStack, out, counter);
            }
        }
        return out;
    }

    private static void strongConnect(String v, Map<String, Set<String>> g, Map<String, Integer> index,
            Map<String, Integer> low, Deque<String> stack, Set<String> onStack, List<Set<String>> out, int[] counter) {
        index.put(v, counter[0]);
        low.put(v, counter[0]);
        counter[0]++;
        stack.push(v);
        onStack.add(v);
        for (String w : g.getOrDefault(v, Set.of())) {
            if (!index.containsKey(w)) {
                strongConnect(w, g, index, low, stack, onStack, out, counter);
                low.put(v, Math.min(low.get(v), low.get(w)));
            } else if (onStack.contains(w)) {
                low.put(v, Math.min(low.get(v), index.get(w)));
            }
        }
        if (low.get(v).equals(index.get(v))) {
            Set<String> scc = new TreeSet<>();
            String w;
            do {
                w = stack.pop();
                onStack.remove(w);
                scc.add(w);
            } while (!w.equals(v));
            if (scc.size() > 1) {
                out.add(scc);
            }
        }
    }

    @Test
    void corePackagesFormNoCycle() throws Exception {
        var graph = packageGraph();
        assertTrue(graph.containsKey(ROOT + ".worker"), "read the classes: " + graph.keySet());
        assertEquals(List.of(), cycles(graph), "package graph: " + graph);
    }

    @Test
    void theKernelDoesNotKnowTheWorkerSpi() throws Exception {
        var graph = packageGraph();
        assertFalse(graph.get(ROOT).contains(ROOT + ".worker"), "core -> " + graph.get(ROOT));
        assertTrue(graph.get(ROOT + ".worker").contains(ROOT), "the SPI is built on the kernel");
    }

    @Test
    void theCycleFinderFindsACycle() {
        var g = Map.<String, Set<String>>of("a", Set.of("b"), "b", Set.of("c"), "c", Set.of("a"), "d", Set.of("a"));
        assertEquals(List.of(Set.of("a", "b", "c")), cycles(g));
    }
}
