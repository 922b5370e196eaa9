/**
 * The distillation task used on stories260K: a system prompt of 200+ tokens that sets the
 * characters (Lily, her dog Max, her grandma) and the setting (a small town by the sea, a red
 * boat), and user prompts that start a sentence; the teacher's continuations follow the
 * setting, a model without the system prompt does not.
 */
export const STORY_SYSTEM_PROMPT = `Once upon a time, there was a little girl named Lily. She lived in a small town by the sea with her grandma and her big brown dog, Max. Every morning, Lily and Max ran to the beach to look at the boats. Lily's favorite boat was a little red boat with a white sail. Grandma told Lily that the red boat belonged to an old fisherman named Tom. Tom was kind and he always waved at Lily and Max. One day, Tom said, "Lily, would you like to sail in my red boat?" Lily was so happy! She said, "Yes, please! Can Max come too?" Tom laughed and said, "Of course, Max can come too." So Lily, Max and Tom went to the sea in the little red boat. The sun was warm and the water was blue. Max barked at the fish and Lily laughed. When they came back, Grandma was waiting on the beach with a big cake. Lily gave Grandma a hug and said, "Thank you for the best day ever!" Lily loved the sea, the red boat, her grandma and her dog Max very much.
`;

const STARTS = [
  'One day,', 'The next morning,', 'After lunch,', 'In the evening,', 'Lily said,', 'Max saw', 'Grandma wanted', 'Tom had',
  'Lily and Max', 'The red boat', 'On the beach,', 'The sea was', 'Lily was very', 'Max was', 'Then Lily', 'Later,',
  'That night,', 'Lily looked at', 'The sun', 'Grandma said,', 'Lily found', 'Max ran', 'Tom smiled and', 'The fish',
  'Lily wanted to', 'The water', 'At the end of the day,', 'Lily felt', 'Max and Tom', 'Lily asked',
  'The boat', 'Lily saw a', 'Everyone', 'The wind', 'Lily went', 'Max liked', 'Grandma made', 'Tom told Lily', 'Lily and Grandma', 'Soon,',
];

/** User prompts: sentence starts that continue the story. */
export function distillPrompts(): string[] {
  return [...STARTS];
}
