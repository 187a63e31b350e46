// The float64 attention reference lives in bench/ref/attention.ts, where `bench attention` can use it too (nothing
// may import test/); the kernel tests import it from here, as every other reference.
export { type AttentionShape, attentionBackwardRef, attentionRef } from "../../bench/ref/attention.js";
