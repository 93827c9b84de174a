package io.quantcal.job;

import com.holdenkarau.spark.testing.JavaDataFrameSuiteBase;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.TestInstance;

/**
 * Base of the Spark tests: spark-testing-base's shared local session, started and stopped from JUnit 5
 * (its own hooks are JUnit 4's, which Jupiter never calls), and a console the job prints to.
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
abstract class SparkJobTest extends JavaDataFrameSuiteBase {

    final ByteArrayOutputStream console = new ByteArrayOutputStream();
    final PrintStream out = new PrintStream(console, true, StandardCharsets.UTF_8);

    @BeforeAll
    void startSpark() {
        runBefore();
    }

    @AfterAll
    static void stopSpark() {
        runAfterClass();
    }
}
