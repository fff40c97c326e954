// Package predictor wires models (followed from the compacted models topic) and feature frames to predictions on
// Kafka and to PredictionService subscribers. The maths is pkg/train.Predict; levels are pkg/congestion.
//
// Order of effects: a frame is consumed, predicted and published to the predictions topic; only after Kafka
// acknowledged the batch (stream.WithAcknowledged) are its predictions handed to the hub, so a gRPC subscriber never
// sees a prediction that a Kafka consumer might not. Both see the same message, event id included. Input offsets
// are committed later, at most every PREDICTOR_COMMIT_INTERVAL (stream.WithCheckpointInterval): the predictor has no
// state of its own to snapshot.
//
// Replays: the prediction of a frame is a function of the frame and the model snapshots held, and its event id is
// the frame's (intersection and window). A frame replayed after a crash or rebalance could meet newer models and
// give other values under the same id, so each prediction carries the offset of its frame
// (stream.HeaderSourceOffset), and a partition starts by reading back the predictions already published for the
// frames it is about to replay (publishedSince); those frames are handed on as published, not predicted again.
//
// Synchronisation with the trainer: a frame whose model is stale is held until the trainer's snapshot makes it
// fresh, for at most PREDICTOR_MODEL_WAIT without progress (modelWaiter), so a fast replay or a backlog is
// predicted with models of its own event time rather than marked stale.
package predictor
