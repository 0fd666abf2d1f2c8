// Re-export: the protobuf schema lives with the separation core (it also splits the real model).
export * from "../../src/separation/onnx-proto";
