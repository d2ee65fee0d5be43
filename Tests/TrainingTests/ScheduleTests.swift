import Testing
@testable import Training

@Suite struct ScheduleTests {
    /// The rate and beta1 of each of 20 steps, as torch's OneCycleLR set them on AdamW.
    @Test func oneCycleMatchesPyTorch() throws {
        let fixture = try TrainingFixture.load().one_cycle
        let schedule = LearningRateSchedule.oneCycle(maxRate: fixture.max_lr, totalSteps: fixture.total_steps)
        let optimizer = AdamW(parameters: [Parameter(name: "p", value: .init(zeros: [3]))], learningRate: 1)
        for step in 0..<fixture.total_steps {
            schedule.apply(to: optimizer)
            let rate = Double(optimizer.learningRate), beta1 = Double(optimizer.beta1)
            #expect(abs(rate - fixture.lr[step]) <= 1e-6 * fixture.lr[step], "step \(step): rate \(rate) vs \(fixture.lr[step])")
            #expect(abs(beta1 - fixture.beta1[step]) <= 1e-6, "step \(step): beta1 \(beta1) vs \(fixture.beta1[step])")
            optimizer.update()
        }
    }

    @Test func warmupThenCosine() {
        let schedule = LearningRateSchedule.warmupCosine(base: 1e-3, warmupSteps: 4, totalSteps: 15, minimum: 1e-5)
        #expect(abs(schedule.learningRate(step: 0) - 2.5e-4) < 1e-9)
        #expect(abs(schedule.learningRate(step: 3) - 1e-3) < 1e-9)
        #expect(abs(schedule.learningRate(step: 4) - 1e-3) < 1e-9)
        #expect(abs(schedule.learningRate(step: 9) - (1e-5 + (1e-3 - 1e-5) / 2)) < 1e-9, "halfway down the cosine")
        #expect(abs(schedule.learningRate(step: 14) - 1e-5) < 1e-9)
        #expect(schedule.beta1(step: 5) == nil)
        for step in 4..<14 { #expect(schedule.learningRate(step: step + 1) < schedule.learningRate(step: step)) }
        #expect(LearningRateSchedule.constant(3e-4).learningRate(step: 99) == 3e-4)
    }
}
