// Package trainer wires the online learning core (pkg/train) to Kafka and gRPC: feature frames in; the served
// form of the models out on the compacted models topic (what the predictor applies, every
// TRAINER_PUBLISH_INTERVAL of event time) and their complete snapshots on the trainer's own changelog (what a
// restart restores from, every TRAINER_CHECKPOINT_INTERVAL); and ModelService.
package trainer
