/**
 * JDK Flight Recorder events of the emulated kernel's workers (category "Loomvisor"). They cost nothing
 * unless a recording enables them; {@code --jfr FILE} on every CLI command records them.
 */
package dev.loomvisor.core.jfr;
