/**
 * Fault-injection points that production code calls: {@link dev.loomvisor.core.inject.Delays}, compiled to
 * nothing outside the test JVMs. The hooks that fire at them (random delays) are test code.
 */
package dev.loomvisor.core.inject;
