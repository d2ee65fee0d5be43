import Foundation

/// The learning rate (and, for one-cycle, Adam's beta1) for each optimiser step.
/// `step` counts the updates already made: 0 before the first.
public enum LearningRateSchedule: Sendable, Equatable {
    case constant(Float)
    /// Linear warm-up, base·(step + 1)/warmupSteps for the first warmupSteps
    /// steps, then cosine from base down to `minimum` at step totalSteps − 1.
    case warmupCosine(base: Float, warmupSteps: Int, totalSteps: Int, minimum: Float)
    /// torch.optim.lr_scheduler.OneCycleLR with its defaults (two phases, cosine
    /// annealing, cycle_momentum on Adam's beta1 between 0.85 and 0.95).
    case oneCycle(maxRate: Float, totalSteps: Int, percentStart: Double = 0.3, divFactor: Double = 25,
                  finalDivFactor: Double = 1e4, baseMomentum: Double = 0.85, maxMomentum: Double = 0.95)

    public func learningRate(step: Int) -> Float {
        switch self {
        case .constant(let rate):
            return rate
        case .warmupCosine(let base, let warmup, let total, let minimum):
            if step < warmup { return Float(Double(base) * Double(step + 1) / Double(warmup)) }
            let span = max(total - 1 - warmup, 1)
            let progress = min(Double(step - warmup) / Double(span), 1)
            return Float(Double(minimum) + (Double(base) - Double(minimum)) * (1 + cos(Double.pi * progress)) / 2)
        case .oneCycle(let maxRate, _, _, let divFactor, let finalDivFactor, _, _):
            let initial = Double(maxRate) / divFactor
            return Float(oneCyclePhase(step: step, start: (initial, Double(maxRate)), end: (Double(maxRate), initial / finalDivFactor)))
        }
    }

    /// Adam's beta1 for this step when the schedule cycles it (one-cycle), else nil.
    public func beta1(step: Int) -> Float? {
        guard case .oneCycle(_, _, _, _, _, let base, let maximum) = self else { return nil }
        return Float(oneCyclePhase(step: step, start: (maximum, base), end: (base, maximum)))
    }

    /// Sets the optimiser's rate (and beta1) for its next update.
    public func apply(to optimizer: AdamW) {
        optimizer.learningRate = learningRate(step: optimizer.step)
        if let beta1 = beta1(step: optimizer.step) { optimizer.beta1 = beta1 }
    }

    /// OneCycleLR.get_lr: phase 1 up to step pct·total − 1, phase 2 to total − 1,
    /// each annealed by cosine from its start to its end value.
    private func oneCyclePhase(step: Int, start: (Double, Double), end: (Double, Double)) -> Double {
        guard case .oneCycle(_, let total, let percentStart, _, _, _, _) = self else { return 0 }
        let phases = [(end: percentStart * Double(total) - 1, from: start.0, to: start.1),
                      (end: Double(total) - 1, from: end.0, to: end.1)]
        var startStep = 0.0
        for (index, phase) in phases.enumerated() {
            if Double(step) <= phase.end || index == phases.count - 1 {
                let pct = (Double(step) - startStep) / (phase.end - startStep)
                return phase.to + (phase.from - phase.to) / 2 * (cos(Double.pi * pct) + 1)
            }
            startStep = phase.end
        }
        return 0
    }
}
